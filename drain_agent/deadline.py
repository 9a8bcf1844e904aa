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
# pilot-agent's MINIMUM_DRAIN_DURATION: clients that have not yet seen the endpoint
# removal keep sending new requests for a few seconds after the deletion
DEFAULT_MIN_DRAIN_SECONDS = 5

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

    ``pod_deadline`` starts as the fallback (start + the grace period passed in) and is
    replaced by what the API says once the pod is read: kubelet's timer runs from its
    stop call, which is when this hook started, for ``deletionGracePeriodSeconds``
    (``deletionTimestamp`` is the deletion instant + grace, 0.2-2 s earlier than that
    and truncated to whole seconds: only used when the grace is absent). After the
    first, the API can only move it earlier (a second, shorter deletion). Thread-safe.
    """

    def __init__(self, start: float, grace_seconds: float, reserve_seconds: float) -> None:
        self._lock = threading.Lock()
        self.start = start
        self.reserve = reserve_seconds
        self.pod_deadline = start + grace_seconds
        self.source = "grace-period"
        self.why = f"--grace-period {grace_seconds:g}s"
        self._from_api = False

    def set_from_api(self, deletion_unix: float, grace_seconds: float | None) -> bool:
        """The pod's deletion as read; True when the deadline moved."""
        if grace_seconds is not None:
            mono, source = self.start + grace_seconds, "deletionGracePeriodSeconds"
            why = f"deletionGracePeriodSeconds {grace_seconds:g}s from the hook's start"
        else:
            mono, source, why = wall_to_monotonic(deletion_unix), "deletionTimestamp", ""
        with self._lock:
            if self._from_api and mono >= self.pod_deadline:
                return False
            self.pod_deadline, self.source, self._from_api = mono, source, True
            self.why = why or source
            return True

    def keep_fallback(self, why: str) -> None:
        """The pod was read (or not) without a deletion: say why the fallback stays."""
        with self._lock:
            if not self._from_api:
                self.why = why

    @property
    def at(self) -> float:
        with self._lock:
            return self.pod_deadline - self.reserve

    def remaining(self, now: float | None = None) -> float:
        return self.at - (time.monotonic() if now is None else now)
