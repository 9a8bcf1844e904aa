"""Progress of long operations on a terminal: one line on stderr, rewritten in place at
most a few times a second and erased at the end; nothing at all when stderr is not a
terminal (pipes, files, CI logs stay as they were)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

INTERVAL = 0.25       # seconds between redraws


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < INTERVAL and done < total):
            return
        self.last = now
        self.stream.write(f"\r\x1b[K{phase}: {done}/{total}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
