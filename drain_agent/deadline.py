"""Durations, timestamps and the drain deadline.

The pod's real deadline is ``metadata.deletionTimestamp`` (deletion + grace period,
set by the API server); without the API it is the hook's start + the grace period.
The agent must be done ``terminationDrainDuration + 2 s`` before it, so that
pilot-agent's own drain fits before kubelet's SIGKILL.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime

# kubelet's default terminationGracePeriodSeconds, the grace assumed when none is given
DEFAULT_GRACE_SECONDS = 30
# reserved on top of terminationDrainDuration: kubelet's 2 s minimum shutdown window
# after a hook, whole-second truncation of the hook's time, clock skew
EXTRA_RESERVE_SECONDS = 2

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Go duration (``"5s"``, ``"1m30s"``, ``"500ms"``) or plain seconds -> seconds."""
    t = text.strip()
    if not t:
        raise ValueError("empty duration")
    try:
        value = float(t)
    except ValueError:
        pass
    else:
        if value < 0:
            raise ValueError(f"negative duration {text!r}")
        return value
    pos = 0
    total = 0.0
    while pos < len(t):
        m = _PART.match(t, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total


def parse_timestamp(text: str) -> float:
    """RFC 3339 (as the API server writes it) -> Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wall_to_monotonic(unix_seconds: float) -> float:
    return time.monotonic() + (unix_seconds - time.time())


class Deadline:
    """The moment (monotonic clock) by which the agent must return.

    ``pod_deadline`` starts as the fallback (start + grace) and is replaced by the
    API server's deletionTimestamp when that arrives; the API can only move it
    earlier afterwards (a second, shorter deletion). Thread-safe.
    """

    def __init__(self, start: float, grace_seconds: float, reserve_seconds: float) -> None:
        self._lock = threading.Lock()
        self.start = start
        self.reserve = reserve_seconds
        self.pod_deadline = start + grace_seconds
        self.source = "grace-period"
        self._from_api = False

    def set_from_api(self, deletion_unix: float) -> None:
        mono = wall_to_monotonic(deletion_unix)
        with self._lock:
            if not self._from_api or mono < self.pod_deadline:
                self.pod_deadline = mono
                self.source = "deletionTimestamp"
                self._from_api = True

    @property
    def at(self) -> float:
        with self._lock:
            return self.pod_deadline - self.reserve

    def remaining(self, now: float | None = None) -> float:
        return self.at - (time.monotonic() if now is None else now)
