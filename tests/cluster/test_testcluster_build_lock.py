"""Two sessions starting at once on an empty cache build the control plane once: the second
waits on the cache's build lock, then finds the binaries. `go` is a stand-in that records its
calls and, before it writes the binaries, waits until the other session is blocked on the
lock (seen in /proc/locks) or has called `go` too (no lock: the test then fails)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from clusterlib import TESTCLUSTER

FAKE_GO = """\
import os, sys, time
from pathlib import Path

calls = Path(os.environ["FAKE_GO_CALLS"])
with calls.open("a") as f:
    f.write(f"{os.getpid()}\\n")
lock, = Path(os.environ["XDG_CACHE_HOME"], "meshcfg-testcluster").glob("control-plane-*.build.lock")
inode = lock.stat().st_ino


def other_session_waits() -> bool:
    blocked = [line.split() for line in Path("/proc/locks").read_text().splitlines()
               if line.split()[1] == "->"]
    return (len(calls.read_text().split()) > 1 or
            any(parts[-3].endswith(f":{inode}") for parts in blocked))


deadline = time.monotonic() + 120
while not other_session_waits() and time.monotonic() < deadline:
    time.sleep(0.05)
out = Path(sys.argv[sys.argv.index("-o") + 1])
for name in ("server", "kube-apiserver", "kube-controller-manager", "kubectl"):
    (out / name).write_text("#!/bin/sh\\n")
    (out / name).chmod(0o755)
"""


def test_concurrent_cold_builds_build_the_control_plane_once(tmp_path: Path) -> None:
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "go").write_text(f"#!{sys.executable}\n{FAKE_GO}")
    (fake_bin / "go").chmod(0o755)
    calls = tmp_path / "go-calls"
    calls.touch()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), FAKE_GO_CALLS=str(calls),
               PATH=f"{fake_bin}:{os.environ['PATH']}")
    sessions = [subprocess.Popen([str(TESTCLUSTER), "build"], text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 env=dict(env, MESHCFG_TESTCLUSTER_DIR=str(tmp_path / f"run-{i}")))
                for i in range(2)]
    results = [session.communicate(timeout=300) for session in sessions]
    assert [session.returncode for session in sessions] == [0, 0], results
    assert len(calls.read_text().split()) == 1, results
    bin_dirs = {out.strip() for out, _ in results}
    assert len(bin_dirs) == 1, results
    bin_dir = Path(bin_dirs.pop())
    assert bin_dir.is_relative_to(tmp_path / "cache")
    assert all(os.access(bin_dir / name, os.X_OK)
               for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl"))
