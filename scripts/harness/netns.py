"""Network namespaces and processes placed in them under a given uid (needs root)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.view import View

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


IP = shutil.which("ip") or "/usr/sbin/ip"
SUBNET_LOCK = b"\0meshcfg-harness-subnets"  # abstract socket: nothing on disk, gone at exit


def _run(*args: str, preexec_fn: Callable[[], None] | None = None) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, text=True,
                   preexec_fn=preexec_fn)


def _new_netns() -> int:
    """A new network namespace, held only by the returned fd (no /run/netns entry)."""
    held: list[int] = []

    def make() -> None:  # a thread of its own: unshare moves only the calling thread
        if _libc.unshare(CLONE_NEWNET) == 0:
            held.append(os.open("/proc/thread-self/ns/net", os.O_RDONLY))

    t = threading.Thread(target=make, name="netns")
    t.start()
    t.join()
    if not held:
        raise OSError("unshare(CLONE_NEWNET) failed (root needed)")
    return held[0]


@contextlib.contextmanager
def _subnet_lock(timeout: float = 60) -> Iterator[None]:
    """Host-wide, so parallel harness processes never pick the same subnet."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        wait_for(lambda: _try_bind(s), timeout, interval=0.01)
        yield
    finally:
        s.close()


def _try_bind(s: socket.socket) -> bool:
    try:
        s.bind(SUBNET_LOCK)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        return False
    return True


class NetNS:
    """A network namespace with lo up and, optionally, a veth to the host.

    The namespace is held by a file descriptor of this process: nothing is left on the host
    when the process ends, however it ends.
    """

    def __init__(self, prefix: str = "mh", veth: bool = True) -> None:
        tag = f"{os.getpid() % 100000}{random.randrange(36**3):03x}"
        self.name = f"{prefix}{tag}"
        self.host_if = f"{prefix}h{tag}"[:15]
        self.pod_if = f"{prefix}p{tag}"[:15]
        self.veth = veth
        self.host_ip = ""
        self.pod_ip = ""
        self.fd = -1

    def __enter__(self) -> NetNS:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def ip(self, *args: str) -> None:
        """``ip ARGS`` inside the namespace (it has no name for ``ip -n``)."""
        _run(*args, preexec_fn=self._inside)

    def _inside(self) -> None:
        if _libc.setns(self.fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")

    def create(self) -> None:
        self.fd = _new_netns()
        self.ip("link", "set", "lo", "up")
        if self.veth:
            with _subnet_lock():
                used = subprocess.run([IP, "-o", "-4", "addr", "show"], capture_output=True,
                                      text=True).stdout
                while True:
                    a, b = random.randrange(16, 250), random.randrange(0, 64) * 4
                    if f" 10.{a}.{b}." not in used:
                        break
                self.host_ip, self.pod_ip = f"10.{a}.{b}.1", f"10.{a}.{b}.2"
                _run("link", "add", self.host_if, "type", "veth", "peer", "name", self.pod_if,
                     "netns", f"/proc/{os.getpid()}/fd/{self.fd}")
                _run("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _run("link", "set", self.host_if, "up")
            self.ip("addr", "add", f"{self.pod_ip}/30", "dev", self.pod_if)
            self.ip("link", "set", self.pod_if, "up")
            self.ip("route", "add", "default", "via", self.host_ip)

    def pids(self) -> list[int]:
        """The processes in the namespace (any uid)."""
        if self.fd < 0:
            return []
        me = os.fstat(self.fd)
        found = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                with contextlib.suppress(OSError):
                    st = os.stat(f"/proc/{d}/ns/net")
                    if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
                        found.append(int(d))
        return found

    def destroy(self) -> None:
        if self.fd < 0:
            return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.veth:
            subprocess.run([IP, "link", "del", self.host_if], capture_output=True)
        os.close(self.fd)
        self.fd = -1

    def enter_fn(
        self, uid: int | None = None, new_session: bool = True, nofile: int = 65536,
        view: View | None = None,
    ) -> Callable[[], None]:
        def enter() -> None:
            self._inside()
            if view is not None:
                view.enter()
            raise_nofile(nofile)
            if new_session:
                os.setsid()
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return enter

    def popen(self, args: Sequence[str], uid: int | None = None, view: View | None = None,
              **kw: Any) -> subprocess.Popen[Any]:
        """Start a process inside the namespace (its own session = its own "container").

        ``args[0]`` is what is exec'd and becomes argv[0]: pass a path (``View.program``
        for a named interpreter), never a made-up name.
        """
        if "executable" in kw:
            raise TypeError("argv[0] must be the program run: no executable=")
        return subprocess.Popen(list(args), preexec_fn=self.enter_fn(uid, view=view), **kw)


def wait_for(cond: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)
