"""JSON log lines to stdout and to the container's log (``/proc/1/fd/1``).

kubelet throws a preStop hook's output away, so the lines are also written to the
stdout of the container's PID 1, which is what ``kubectl logs`` shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO


class JsonLog:
    def __init__(self, container_log: str | None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.lock = threading.Lock()
        self.fd: int | None = None
        if container_log:
            self.fd = _open_container_log(container_log, self.stream)

    def __call__(self, msg: str, level: str = "info", **fields: Any) -> None:
        rec: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "logger": "meshcfg-drain",
            "msg": msg,
        }
        rec.update(fields)
        line = json.dumps(rec, separators=(",", ":"), default=str) + "\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (OSError, ValueError):
                pass
            if self.fd is not None:
                # pipe full (non-blocking) or gone: never block the drain
                with contextlib.suppress(OSError):
                    os.write(self.fd, line.encode())

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _open_container_log(path: str, stream: TextIO) -> int | None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        a = os.fstat(fd)
        b = os.fstat(stream.fileno())
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):  # same file: do not log twice
            os.close(fd)
            return None
    except (OSError, ValueError, AttributeError):
        pass
    return fd
