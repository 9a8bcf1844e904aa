"""core/v1 Events on the pod, posted from a background thread (best effort).

The drain never waits on the API for more than ``flush_timeout`` seconds in total:
events go through a queue to one worker thread, and ``close`` waits a bounded time.
Event names derive from the drain's start time, so a hook run twice by kubelet does
not post the same event twice (the second POST gets 409 and is ignored). A message may
be a function, called by the worker when it posts: "DrainStarted" then says where the
deadline came from after the first pod read, not before it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from drain_agent.kubeapi import ApiError, KubeApi

MAX_MESSAGE = 1024
COMPONENT = "meshcfg-drain"
CONTROLLER = "meshcfg.io/drain-agent"
DEFAULT_FIELD_PATH = "spec.containers{istio-proxy}"
Message = str | Callable[[], str]


def _rfc3339(unix: float, micro: bool = False) -> str:
    dt = datetime.fromtimestamp(unix, UTC)
    if micro:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate(message: str, limit: int = MAX_MESSAGE) -> str:
    if len(message) <= limit:
        return message
    return message[: limit - 3] + "..."


class EventReporter:
    def __init__(
        self,
        api: KubeApi | None,
        namespace: str,
        pod_name: str,
        drain_id: str,
        log: Any = None,
        field_path: str = DEFAULT_FIELD_PATH,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.pod_name = pod_name
        self.drain_id = drain_id
        self.field_path = field_path
        self.pod_uid: str | None = None
        # called by the worker before its first POST: may wait (bounded) for the pod's uid
        self.before_first: Callable[[], str | None] | None = None
        self.log = log
        self._q: queue.Queue[tuple[str, Message, bool, float] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.emitted: list[str] = []
        self.posted: list[str] = []
        self.failed: list[str] = []

    @property
    def enabled(self) -> bool:
        return self.api is not None and bool(self.namespace and self.pod_name)

    def build(
        self, reason: str, message: str, warning: bool = False, at: float | None = None
    ) -> dict[str, Any]:
        now = time.time() if at is None else at
        involved: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": self.namespace,
            "name": self.pod_name,
        }
        if self.field_path:
            involved["fieldPath"] = self.field_path
        if self.pod_uid:
            involved["uid"] = self.pod_uid
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{self.pod_name}.{self.drain_id}.{reason.lower()}",
                "namespace": self.namespace,
            },
            "involvedObject": involved,
            "reason": reason,
            "message": truncate(message),
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "firstTimestamp": _rfc3339(now),
            "lastTimestamp": _rfc3339(now),
            "eventTime": _rfc3339(now, micro=True),
            "count": 1,
            "action": "Drain",
            "reportingComponent": CONTROLLER,
            "reportingInstance": self.pod_name[:128],
        }

    def emit(self, reason: str, message: Message, warning: bool = False) -> None:
        if not self.enabled:
            return
        self.emitted.append(reason)
        self._q.put((reason, message, warning, time.time()))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="events", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self.api is not None
        if self.before_first is not None:
            self.pod_uid = self.before_first() or self.pod_uid
        while True:
            item = self._q.get()
            if item is None:
                return
            reason, message, warning, at = item
            text = message if isinstance(message, str) else message()
            ev = self.build(reason, text, warning, at)
            try:
                self.api.create_event(self.namespace, ev, timeout=self.api.timeout)
                self.posted.append(reason)
            except ApiError as e:
                if e.status == 409:  # the same drain already reported it
                    self.posted.append(reason)
                    continue
                self.failed.append(reason)
                if self.log is not None:
                    self.log("event_failed", reason=reason, error=str(e))

    def close(self, flush_timeout: float) -> list[str]:
        """Let queued events go out, waiting at most ``flush_timeout`` seconds; the
        reasons still unposted then are logged (the only trace they leave) and returned."""
        if self._thread is None:
            return []
        self._q.put(None)
        self._thread.join(max(0.0, flush_timeout))
        done = set(self.posted) | set(self.failed)
        unsent = [r for r in self.emitted if r not in done]
        if unsent and self.log is not None:
            self.log("events_unsent", reasons=unsent, waitedSeconds=round(flush_timeout, 2))
        return unsent
