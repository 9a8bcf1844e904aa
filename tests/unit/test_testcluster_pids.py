"""scripts/testcluster knows its svcrelay by the state dir it runs in, not by the checkout.

A `down` run from another clone used to leave the relay running: it recognised svcrelay
only by its own checkout's script path.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RELAY = "import sys; print('ready', flush=True); sys.stdin.read()"


@pytest.fixture
def testcluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MESHCFG_TESTCLUSTER_DIR", str(state))
    loader = importlib.machinery.SourceFileLoader("testcluster_under_test",
                                                  str(ROOT / "scripts" / "testcluster"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def relays() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def start_relay(script: Path, cwd: Path, relays: list[subprocess.Popen[str]]) -> int:
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(RELAY)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=cwd, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    relays.append(proc)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc.pid


def test_a_relay_from_another_checkout_in_this_state_dir_is_ours(
        testcluster: ModuleType, tmp_path: Path, relays: list[subprocess.Popen[str]]) -> None:
    other_clone = tmp_path / "other-clone" / "scripts" / "node" / "svcrelay.py"
    pid = start_relay(other_clone, testcluster.STATE, relays)
    testcluster.pid_file("svcrelay").write_text(str(pid))
    assert testcluster.our_pid("svcrelay") == pid


def test_a_relay_of_another_state_dir_is_not(
        testcluster: ModuleType, tmp_path: Path, relays: list[subprocess.Popen[str]]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pid = start_relay(tmp_path / "c" / "scripts" / "node" / "svcrelay.py", elsewhere, relays)
    testcluster.pid_file("svcrelay").write_text(str(pid))
    assert testcluster.our_pid("svcrelay") is None


def test_another_program_under_the_recorded_pid_is_not(
        testcluster: ModuleType, tmp_path: Path, relays: list[subprocess.Popen[str]]) -> None:
    pid = start_relay(tmp_path / "c" / "scripts" / "node" / "relay.py", testcluster.STATE,
                      relays)
    testcluster.pid_file("svcrelay").write_text(str(pid))
    assert testcluster.our_pid("svcrelay") is None
