"""Helpers for the drain agent's tests: a private network namespace with processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from harness.netns import NetNS  # noqa: E402
from harness.view import View, pod_env  # noqa: E402

HELPER = str(Path(__file__).with_name("sockets_helper.py"))
APP_UID = 1000
PROXY_UID = 1337


class Pod:
    """A network namespace plus processes holding sockets in it."""

    def __init__(self, ns: NetNS, view: View) -> None:
        self.ns = ns
        self.view = view
        self.procs: list[subprocess.Popen[str]] = []

    def hold(self, spec: dict[str, Any], uid: int | None = None) -> subprocess.Popen[str]:
        p = self.ns.popen(
            [self.view.python, HELPER, json.dumps(spec)],
            uid=uid,
            view=self.view,
            env=pod_env(str(ROOT)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.strip() == "ready", f"helper failed: {spec}"
        return p

    def release(self, p: subprocess.Popen[str]) -> None:
        assert p.stdin is not None
        p.stdin.close()
        p.wait(10)

    @property
    def net_dir(self) -> str:
        return f"/proc/{self.procs[0].pid}/net"

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


