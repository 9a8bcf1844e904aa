"""Best-effort calls to the Envoy admin endpoint (``127.0.0.1:15000``).

Requests in flight = HTTP requests active on every HTTP connection manager plus
connections active on listeners that are not HTTP (TCP proxy), from ``/stats``.
``None`` means "unknown", never zero: Istio's bootstrap exports only the stats its
``stats_matcher`` lets through (by default neither name below; ``kubectl meshcfg
render`` adds both as inclusion suffixes when the drain agent is enabled). The admin
endpoint's own counters prove that a name is exported: our own request is active on
it while Envoy answers, so a filtered name is told from a zero one.
"""

from __future__ import annotations

import http.client
import re
import urllib.parse

DEFAULT_STATUS_PORT = 15020  # pilot-agent's; it closes it as soon as it gets SIGTERM
RQ_ACTIVE = "downstream_rq_active"
CX_ACTIVE = "downstream_cx_active"
STATS_QUERY = f"/stats?usedonly&filter=({RQ_ACTIVE}|{CX_ACTIVE})$"
# the inclusion suffixes the agent needs in the proxy's stats matcher
REQUIRED_SUFFIXES = (RQ_ACTIVE, CX_ACTIVE)
# present whenever the names are exported at all (the admin endpoint serving this call)
MARKERS = (f"http.admin.{RQ_ACTIVE}", f"listener.admin.{CX_ACTIVE}")
# Not traffic to wait for: per-worker copies of a listener's counter (Envoy reports
# each listener's total and one per worker thread), internal listeners (in-process
# plumbing, as pilot-agent's own zero-connection check skips them), the admin, and
# Istio's bootstrap listeners for metrics (15090), health (15021) and their HCMs.
_IGNORED = re.compile(
    r"\.(worker_\d+|main_thread)\."
    r"|^listener\.(admin|envoy_internal_)"
    r"|^listener\..*_(15021|15090)\."
    r"|^http\.(admin|agent|stats|secure_stats|secure_merged_stats)\."
)


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


def missing_stats(stats: dict[str, int]) -> list[str]:
    """The needed names this proxy's stats matcher filters out (empty: all exported)."""
    return [m.rsplit(".", 1)[1] for m in MARKERS if m not in stats]


def in_flight(stats: dict[str, int]) -> int | None:
    """HTTP requests active + non-HTTP downstream connections active; None when the
    stats matcher hides either name (unknown, not zero)."""
    if missing_stats(stats):
        return None
    rq = http_cx = listener_cx = 0
    for name, value in stats.items():
        if _IGNORED.search(name):
            continue
        if name.startswith("http."):
            if name.endswith(RQ_ACTIVE):
                rq += value
            elif name.endswith(CX_ACTIVE):
                http_cx += value
        elif name.startswith("listener.") and name.endswith(CX_ACTIVE):
            listener_cx += value
    return rq + max(0, listener_cx - http_cx)


def pilot_agent_drain(status_port: int, timeout: float) -> bool:
    """``POST /drain`` to pilot-agent's status port: what Istio's own preStop does for a
    native sidecar (``pilot-agent request POST drain``). pilot-agent drains Envoy's
    listeners now and, when SIGTERM comes (after the application has exited), exits at
    once instead of draining for terminationDrainDuration again."""
    conn = http.client.HTTPConnection("127.0.0.1", status_port, timeout=timeout)
    try:
        conn.request("POST", "/drain")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
