"""Network namespaces and processes placed in them under a given uid (needs root)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

CLONE_NEWNET = 0x40000000
PR_SET_NAME = 15
_libc = ctypes.CDLL(None, use_errno=True)


def set_comm(name: str) -> None:
    """Set this process's name as ps/psutil show it (/proc/self/comm)."""
    _libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def raise_nofile(n: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(n, soft), max(n, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


class NetNS:
    """A named network namespace with lo up and, optionally, a veth to the host."""

    def __init__(self, prefix: str = "mh", veth: bool = True) -> None:
        tag = f"{os.getpid() % 100000}{random.randrange(36**3):03x}"
        self.name = f"{prefix}{tag}"
        self.host_if = f"{prefix}h{tag}"[:15]
        self.pod_if = f"{prefix}p{tag}"[:15]
        self.veth = veth
        self.host_ip = ""
        self.pod_ip = ""
        self.created = False

    def __enter__(self) -> NetNS:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def create(self) -> None:
        _run("ip", "netns", "add", self.name)
        self.created = True
        _run("ip", "-n", self.name, "link", "set", "lo", "up")
        if self.veth:
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.pod_if,
                 "netns", self.name)
            self._assign_subnet()
            _run("ip", "link", "set", self.host_if, "up")
            _run("ip", "-n", self.name, "addr", "add", f"{self.pod_ip}/30", "dev", self.pod_if)
            _run("ip", "-n", self.name, "link", "set", self.pod_if, "up")
            _run("ip", "-n", self.name, "route", "add", "default", "via", self.host_ip)

    def _assign_subnet(self) -> None:
        """A /30 no other interface of the host uses; chosen under a lock, so parallel
        harness processes never pick the same one."""
        with open("/run/meshcfg-harness-subnets.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                                  text=True).stdout
            while True:
                a, b = random.randrange(16, 250), random.randrange(0, 64) * 4
                if f" 10.{a}.{b}." not in used:
                    break
            self.host_ip, self.pod_ip = f"10.{a}.{b}.1", f"10.{a}.{b}.2"
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)

    def pids(self) -> list[int]:
        r = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def destroy(self) -> None:
        if not self.created:
            return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.veth:
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        self.created = False

    def enter_fn(
        self, uid: int | None = None, new_session: bool = True, nofile: int = 65536
    ) -> Callable[[], None]:
        path = f"/run/netns/{self.name}"

        def enter() -> None:
            fd = os.open(path, os.O_RDONLY)
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns failed")
            os.close(fd)
            raise_nofile(nofile)
            if new_session:
                os.setsid()
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return enter

    def popen(self, args: Sequence[str], uid: int | None = None, **kw: Any) -> subprocess.Popen[Any]:
        """Start a process inside the namespace (its own session = its own "container")."""
        return subprocess.Popen(list(args), preexec_fn=self.enter_fn(uid), **kw)


def wait_for(cond: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def _world_executable(path: str) -> bool:
    """True when any uid can reach and execute ``path`` (every directory o+x)."""
    real = os.path.realpath(path)
    parts = real.split("/")
    for i in range(2, len(parts)):
        d = "/".join(parts[:i]) or "/"
        try:
            if not os.stat(d).st_mode & 0o001:
                return False
        except OSError:
            return False
    try:
        return bool(os.stat(real).st_mode & 0o001)
    except OSError:
        return False


def python_for_others() -> list[str]:
    """An interpreter non-root uids can run, with this venv's packages importable.

    The venv's interpreter may live under a private home (``/root/.pyenv``); then the
    system python3 of the same minor version runs with the venv's site-packages.
    """
    if _world_executable(sys.executable):
        return [sys.executable]
    for cand in (f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}",
                 "/usr/bin/python3"):
        if _world_executable(cand):
            return [cand]
    raise RuntimeError(f"no python interpreter executable by other uids ({sys.executable})")


def reachable_by_others(path: str) -> None:
    """Let other uids reach ``path``: the pod's application (uid 1000) and proxy (uid 1337)
    run code from the checkout and its venv, and a checkout in a private directory (a
    0700 ``mktemp -d``, say) hides them. Adds search permission (o+x, never read) to
    ``path`` and each directory above it that lacks it, and says so."""
    current = os.path.realpath(path)
    while True:
        mode = os.stat(current).st_mode
        if not mode & 0o001:
            os.chmod(current, mode | 0o001)
            print(f"harness: added o+x to {current} so uids 1000 and 1337 can reach "
                  f"{path}", file=sys.stderr)
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def env_for_others(repo_root: str) -> dict[str, str]:
    """Environment for ``python_for_others()``: repo and venv site-packages on the path,
    both made reachable for other uids."""
    import sysconfig

    env = dict(os.environ)
    paths = [repo_root, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    for path in paths:
        reachable_by_others(path)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.pop("PYTHONHOME", None)
    return env
