"""The PyInstaller one-file binary: read-only root, uid 1337, stdlib + psutil only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import APP_UID, ROOT, Pod


@pytest.fixture(scope="session")
def agent_binary() -> Iterator[Path]:
    out = Path(tempfile.mkdtemp(prefix="meshcfg-drain-bin-"))
    out.chmod(0o755)
    r = subprocess.run([str(ROOT / "scripts" / "build-agent"), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.exists()
    yield path
    shutil.rmtree(out, ignore_errors=True)


def test_agent_imports_only_stdlib_and_psutil() -> None:
    code = (
        "import sys, sysconfig\n"
        "before = set(sys.modules)\n"
        "import drain_agent.cli, drain_agent.prestop, drain_agent.census\n"
        "site = (sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib'])\n"
        "third = sorted({m.split('.')[0] for m, mod in list(sys.modules.items())\n"
        "  if m not in before and getattr(mod, '__file__', None)\n"
        "  and mod.__file__.startswith(site)})\n"
        "print(' '.join(third))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    assert set(out) == {"psutil"}, out


def test_binary_contents(agent_binary: Path) -> None:
    listing = subprocess.run([str(Path(sys.executable).parent / "pyi-archive_viewer"), "-l",
                              str(agent_binary)], capture_output=True, text=True).stdout
    assert "psutil" in listing
    for banned in ("kubernetes", "yaml", "click", "kubectl_meshcfg"):
        assert banned not in listing, banned
    assert agent_binary.stat().st_size < 20 * 1024 * 1024


def test_binary_runs_with_read_only_root_as_1337(agent_binary: Path, pod: Pod) -> None:
    pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 8080}]}, uid=2000)
    base = Path(tempfile.mkdtemp(prefix="meshcfg-ro-"))  # reachable by uid 1337
    base.chmod(0o755)
    empty_dir = base / "emptydir"
    empty_dir.mkdir()
    # a private mount namespace: / read-only (this mount only), an emptyDir-like tmpfs
    script = f"""
set -e
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777,size=64m tmpfs {empty_dir}
if touch /meshcfg-ro-probe 2>/dev/null; then echo "root is writable"; exit 9; fi
run() {{ setpriv --reuid 1337 --regid 1337 --clear-groups env -i "$@"; }}
run TMPDIR={empty_dir} {agent_binary} --version
run TMPDIR={empty_dir} {agent_binary} census -o json --net-dir {pod.net_dir}
if run TMPDIR=/ {agent_binary} --version >/dev/null 2>&1; then exit 8; fi
echo unpack-needs-a-writable-dir
"""
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[0] == "meshcfg-drain 0.1.0"
    census = json.loads("\n".join(lines[1:-1]))
    assert census["total"] == 2 and census["inbound"] == 1
    assert lines[-1] == "unpack-needs-a-writable-dir"


def test_binary_drains_in_the_harness(agent_binary: Path) -> None:
    r = subprocess.run([str(ROOT / "scripts" / "termination-harness"), "--prestop", "agent",
                        "--agent-bin", str(agent_binary), "--request-seconds", "3",
                        "--drain-seconds", "1", "--grace-seconds", "8"],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["succeeded"] == 1 and res["prestop_exit"] == 0, res
    assert res["agent_in_container_log"]


def test_binary_installs_itself_for_the_delivery_init_container(agent_binary: Path,
                                                                tmp_path: Path) -> None:
    target = tmp_path / "shared" / "meshcfg-drain"
    r = subprocess.run([str(agent_binary), "install", str(target)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert target.read_bytes() == agent_binary.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o755
    copied = subprocess.run([str(target), "--version"], capture_output=True, text=True, timeout=60)
    assert copied.stdout.startswith("meshcfg-drain ")


def test_dockerfile_packs_what_build_agent_produces_where_render_expects_it() -> None:
    from kubectl_meshcfg.core import render

    dockerfile = (ROOT / "manifests" / "drain-agent" / "Dockerfile").read_text().splitlines()
    instructions = [line.split(None, 1) for line in dockerfile if line and not line.startswith("#")]
    copies = [args.split() for op, args in instructions if op == "COPY"]
    build_agent = (ROOT / "scripts" / "build-agent").read_text()
    assert 'out="$root/dist"' in build_agent and "--script meshcfg-drain" in build_agent
    assert copies[-1] == ["dist/meshcfg-drain", render.AGENT_IMAGE_BINARY]
    # PyInstaller's bootloader links libz.so.1, which distroless "base" lacks (exit 127)
    assert [c[0] for c in copies[:-1]] == ["--from=zlib"]
    assert copies[0][-1] == "/usr/lib/x86_64-linux-gnu/libz.so.1"
    assert ["USER", f"{render.PROXY_UID}:{render.PROXY_UID}"] in instructions
    assert ["ENTRYPOINT", f'["{render.AGENT_IMAGE_BINARY}"]'] in instructions
    installer = render.agent_installer("any")
    assert installer["command"] == [render.AGENT_IMAGE_BINARY, "install", render.AGENT_BINARY]
