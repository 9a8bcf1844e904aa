"""Let the pod's uids (1000, 1337) run this checkout's Python without touching the host.

Two parts, neither changing a permission, owner or file the harness did not create:

* ``View.dir``: a venv-style directory the harness creates (``pyvenv.cfg``, ``bin/<name>``
  links to the interpreter, ``lib`` linked to the running venv's ``lib``). A process
  started as ``bin/envoy`` runs the interpreter with ``argv[0]`` a real path to it, and
  tools that name a process by its executable (``netstat -p``) call it ``envoy``.
* ``View.enter()`` (run in the child before it drops root): a private mount namespace in
  which every directory other uids cannot search that lies above a path the pod needs (a
  0700 home holding pyenv's Python, a 0700 ``mktemp -d`` holding the checkout) is covered
  by a tmpfs holding only bind mounts of those paths, at their own paths. Nothing is
  mounted in the host's namespace; the mounts go with the last process using them.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None,
                       flags, data.encode() if data else None), f"mount {src} on {target}")


def searchable_by_others(path: str) -> bool:
    return bool(os.stat(path).st_mode & 0o001)


def hidden_ancestor(path: str) -> str | None:
    """The topmost directory above ``path`` that other uids cannot search, if any."""
    parts = path.strip("/").split("/")
    for i in range(len(parts) - 1):
        d = "/" + "/".join(parts[: i + 1])
        if not searchable_by_others(d):
            return d
    return None


def _outermost(paths: Iterable[str]) -> list[str]:
    kept: list[str] = []
    for p in sorted(set(paths)):
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return kept


def python_paths() -> list[str]:
    """Where the running interpreter, its venv and everything it imports from live."""
    found = [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))]
    found += [p for p in sys.path if p and os.path.isdir(p)]
    return [os.path.realpath(p) for p in found]


class View:
    """The venv-style directory and the mount plan for one harness run (or test session)."""

    def __init__(self, needed: Iterable[str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="meshcfg-pod-")
        os.chmod(self.dir, 0o755)  # created here; the pod's uids must reach it
        try:
            self._layout()
            groups: dict[str, list[str]] = {}
            for p in {self.dir, *python_paths(), *(os.path.realpath(p) for p in needed)}:
                if not searchable_by_others(p):
                    raise RuntimeError(f"harness: uids 1000 and 1337 cannot search {p} "
                                       f"(mode {os.stat(p).st_mode & 0o777:o}); the harness "
                                       "changes no permissions: run it from elsewhere")
                top = hidden_ancestor(p)
                if top is not None:
                    groups.setdefault(top, []).append(p)
            self.covers = {top: _outermost(paths) for top, paths in groups.items()}
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _layout(self) -> None:
        base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        in_venv = sys.prefix != sys.base_prefix
        with open(os.path.join(self.dir, "pyvenv.cfg"), "w") as f:
            f.write(f"home = {os.path.dirname(base)}\n"
                    f"include-system-site-packages = {'false' if in_venv else 'true'}\n")
        os.mkdir(os.path.join(self.dir, "bin"))
        if in_venv:
            os.symlink(os.path.join(os.path.realpath(sys.prefix), "lib"),
                       os.path.join(self.dir, "lib"))
        self.interpreter = base
        for name in ("python3", "envoy", "pilot-agent"):
            self.program(name)

    def program(self, name: str) -> str:
        """``bin/<name>``, a link to the interpreter: run it as the process's argv[0]."""
        path = os.path.join(self.dir, "bin", name)
        if not os.path.lexists(path):
            os.symlink(self.interpreter, path)
        return path

    @property
    def python(self) -> str:
        return self.program("python3")

    def enter(self) -> None:
        """In a child, as root, before exec: a private mount namespace with the view."""
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
        for top, paths in self.covers.items():
            fds = [os.open(p, os.O_PATH) for p in paths]  # the originals, before covering
            _mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
            for p, fd in zip(paths, fds, strict=True):
                self._mkdirs(top, p)
                _mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC, None)
                os.close(fd)

    @staticmethod
    def _mkdirs(top: str, path: str) -> None:
        current = top
        for part in path[len(top):].strip("/").split("/"):
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current)
                os.chmod(current, 0o755)  # in the tmpfs made above, whatever the umask

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> View:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pod_env(root: str) -> dict[str, str]:
    """The environment for the pod's Python processes: the checkout first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    for var in ("PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(var, None)
    return env


def exec_record(pid: int) -> dict[str, object]:
    """How process ``pid`` was exec'd: argv[0] and whether it is the program running."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode()
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        exe = os.stat(f"/proc/{pid}/exe")
        target = os.stat(f"/proc/{pid}/root{argv0}") if argv0.startswith("/") else None
    except OSError as e:
        return {"pid": pid, "error": str(e)}
    same = target is not None and (target.st_dev, target.st_ino) == (exe.st_dev, exe.st_ino)
    return {"pid": pid, "comm": comm, "argv0": argv0, "exe": os.readlink(f"/proc/{pid}/exe"),
            "argv0_is_exe": same}
