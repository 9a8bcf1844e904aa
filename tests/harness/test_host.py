"""The harness runs on any Python and leaves the host as it found it.

* every process it starts is exec'd with argv[0] the program it runs (an interpreter
  outside /usr computes its prefix from argv[0]: a made-up "envoy" would break it);
* from a checkout inside a 0700 directory, with a venv made from each interpreter of
  this Python version on the machine (Debian's and, where present, pyenv's under the
  0700 /root), it works and no directory's mode changes;
* nothing it made is left: no process in its network namespace, no mount, no directory.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from harness.view import View  # noqa: E402

pytestmark = pytest.mark.harness

ROOT = Path(__file__).resolve().parents[2]
HARNESS_PROCESSES = {"upstream", "app", "pilot-agent", "envoy"}
ENVOY_WORKERS = 2


def interpreters() -> dict[str, str]:
    """Every interpreter of this major.minor here: the running one's base, Debian's, pyenv's."""
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = [getattr(sys, "_base_executable", sys.executable), f"/usr/bin/python{ver}",
             *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{ver}.*/bin/python{ver}")))]
    out: dict[str, str] = {}
    for p in found:
        if os.path.exists(p):
            real = os.path.realpath(p)
            kind = "system" if real.startswith("/usr/") else "own-prefix"
            out.setdefault(f"{kind}:{real}", real)
    return out


def modes_above(*paths: str | Path) -> dict[str, int]:
    """Mode bits of each path and every directory above it."""
    out: dict[str, int] = {}
    for p in paths:
        current = os.path.realpath(p)
        while True:
            out[current] = os.stat(current).st_mode
            if current == "/":
                break
            current = os.path.dirname(current)
    return out


def host_mounts_mentioning(text: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if text in line]


def assert_nothing_left(result: dict[str, Any]) -> None:
    view = result["view_dir"]
    assert view.startswith("/tmp/meshcfg-pod-") and not os.path.exists(view), view
    assert not host_mounts_mentioning(view)
    # the namespace lives while a process or fd holds it: its processes and its veth
    left = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        started = {p["pid"]: p["argv0"] for p in result["processes"]}
        if view.encode() in b" ".join(argv) or started.get(int(d)) == argv[0].decode():
            left.append(d)
    assert not left, f"processes the harness started are left: {left}"
    link = subprocess.run(["ip", "link", "show", result["host_interface"]], capture_output=True)
    assert result["host_interface"] and link.returncode != 0, result["host_interface"]


def assert_execd_as_their_programs(result: dict[str, Any]) -> None:
    procs = result["processes"]
    for p in procs:
        assert "error" not in p, p
        assert p["argv0"].startswith("/") and p["argv0_is_exe"], (result.get("name"), p)
    assert {p["comm"] for p in procs} >= HARNESS_PROCESSES, procs
    # under the real pilot-agent the Envoy stand-in forks one inbound worker per
    # --concurrency (PROXY_CONFIG's 2), as Envoy runs a worker thread each
    envoys = [p for p in procs if p["comm"] == "envoy"]
    assert len(envoys) == (1 + ENVOY_WORKERS if result["pilot_agent"] == "real" else 1), procs
    if result["prestop"] != "none":
        # and the preStop hook
        assert len(procs) - len(envoys) == len(HARNESS_PROCESSES) - 1 + 1, procs


def test_every_process_is_execd_as_the_program_it_runs(
    harness_results: dict[str, dict[str, Any]],
) -> None:
    for name, r in harness_results.items():
        assert "error" not in r, r
        assert_execd_as_their_programs(r)
        names = {p["comm"]: os.path.basename(p["argv0"]) for p in r["processes"]}
        # netstat -p names a process by its argv[0]: the preStop loop's `grep -v envoy`
        assert names["envoy"] == "envoy" and names["pilot-agent"] == "pilot-agent", name


def test_nothing_is_left_behind(harness_results: dict[str, dict[str, Any]]) -> None:
    for r in harness_results.values():
        assert "error" not in r, r
        assert_nothing_left(r)


@pytest.fixture
def private_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="meshcfg-private-"))  # 0700, like `mktemp -d`
    assert d.stat().st_mode & 0o777 == 0o700
    yield d
    shutil.rmtree(d, ignore_errors=True)


def private_checkout(d: Path, interpreter: str) -> Path:
    """What the harness needs of a checkout, with a venv of its own made from
    ``interpreter``; this venv's packages (psutil) come through a .pth file."""
    c = d / "c"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "scripts", c / "scripts", ignore=ignore)
    shutil.copytree(ROOT / "drain_agent", c / "drain_agent", ignore=ignore)
    subprocess.run([interpreter, "-m", "venv", "--without-pip", str(c / ".venv")], check=True)
    site = subprocess.run([str(c / ".venv" / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "meshcfg-test.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return c


@pytest.mark.parametrize("interpreter", list(interpreters().values()), ids=list(interpreters()))
def test_private_checkout_any_python_no_mode_change(private_dir: Path, interpreter: str) -> None:
    c = private_checkout(private_dir, interpreter)
    watched = [c / "scripts" / "harness", c / ".venv" / "bin", interpreter,
               sysconfig.get_paths()["purelib"], ROOT, "/tmp"]
    before = modes_above(*watched)
    r = subprocess.run([str(c / "scripts" / "termination-harness"), "--prestop", "agent",
                        "--request-seconds", "2", "--drain-seconds", "1", "--grace-seconds", "8"],
                       capture_output=True, text=True, timeout=240)
    after = modes_above(*watched)
    assert r.returncode == 0, r.stderr[-3000:]
    assert after == before
    assert private_dir.stat().st_mode & 0o777 == 0o700
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["succeeded"] == 1 and res["prestop_exit"] == 0, res
    assert res["agent"]["msg"] == "drain_completed", res
    assert_execd_as_their_programs(res)
    pod = [p for p in res["processes"] if p["comm"] not in ("upstream", "pilot-agent")]
    assert {os.path.realpath(p["exe"]) for p in pod} == {interpreter}, pod
    # PID 1 of the proxy container is Istio's own pilot-agent, built by scripts/pilot-agent
    agent = [p for p in res["processes"] if p["comm"] == "pilot-agent"]
    assert [os.path.basename(p["exe"]) for p in agent] == ["pilot-agent"], agent
    assert "meshcfg-istio" in agent[0]["exe"], agent
    assert_nothing_left(res)


def test_view_covers_only_what_other_uids_cannot_search(private_dir: Path) -> None:
    inner = private_dir / "a" / "b"
    inner.mkdir(parents=True, mode=0o755)
    (private_dir / "a").chmod(0o755)
    with View([str(inner), str(private_dir / "a")]) as v:
        assert v.covers[str(private_dir)] == [str(private_dir / "a")]
        assert os.path.realpath(Path(v.dir, "bin", "envoy")) == v.interpreter
    assert not os.path.exists(v.dir)
    hidden = private_dir / "h"
    hidden.mkdir(mode=0o700)
    with pytest.raises(RuntimeError, match=f"cannot search {hidden} .mode 700.*changes no perm"):
        View([str(hidden)])


def test_help_says_what_it_needs_and_touches() -> None:
    r = subprocess.run([str(ROOT / "scripts" / "termination-harness"), "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for needed in ("root", "`ip`", "network namespace", "no /run/netns entry", "veth",
                   "/tmp/meshcfg-pod-*", "mount namespace",
                   "no permission, owner or file outside /tmp/meshcfg-pod-* changes"):
        assert needed in text, needed
