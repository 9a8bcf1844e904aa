"""Best-effort calls to the Envoy admin endpoint (``127.0.0.1:15000``).

Requests in flight = HTTP requests active on every HTTP connection manager plus
connections active on listeners that are not HTTP (TCP proxy), from ``/stats``.
The admin listener's own counters are left out. ``None`` means "unknown".
"""

from __future__ import annotations

import http.client
import urllib.parse

STATS_QUERY = "/stats?usedonly&filter=(downstream_rq_active|downstream_cx_active)$"


class EnvoyAdmin:
    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 15000
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _request(self, method: str, path: str) -> tuple[int, str]:
        # One persistent connection: its socket keeps one inode, which the census
        # learns once instead of rescanning the proxy's fds at every poll.
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, headers={"Connection": "keep-alive"})
                resp = self._conn.getresponse()
                body = resp.read().decode("utf-8", "replace")
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, body
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise OSError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def drain_listeners(self, inbound_only: bool = True) -> bool:
        path = "/drain_listeners?graceful"
        if inbound_only:
            path = "/drain_listeners?inboundonly&graceful"
        try:
            status, _ = self._request("POST", path)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200

    def stats(self) -> dict[str, int] | None:
        try:
            status, body = self._request("GET", STATS_QUERY)
        except (OSError, http.client.HTTPException):
            return None
        if status != 200:
            return None
        return parse_stats(body)


def parse_stats(body: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in body.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        try:
            out[name.strip()] = int(value.strip())
        except ValueError:
            continue
    return out


def in_flight(stats: dict[str, int]) -> int:
    """HTTP requests active + non-HTTP downstream connections active."""
    rq = 0
    http_cx = 0
    listener_cx = 0
    for name, value in stats.items():
        if name.startswith(("http.admin.", "listener.admin.")):
            continue
        if name.startswith("http."):
            if name.endswith(".downstream_rq_active"):
                rq += value
            elif name.endswith(".downstream_cx_active"):
                http_cx += value
        elif name.startswith("listener.") and name.endswith(".downstream_cx_active"):
            listener_cx += value
    return rq + max(0, listener_cx - http_cx)
