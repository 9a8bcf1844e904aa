"""Pure pieces of the agent: durations, ports, addresses, stats, events, deadlines."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drain_agent import procnet
from drain_agent.census import parse_ports
from drain_agent.cli import field_path, native_from_status
from drain_agent.deadline import Deadline, parse_duration, parse_timestamp
from drain_agent.envoy_admin import in_flight, missing_stats, parse_stats
from drain_agent.events import MAX_MESSAGE, EventReporter, truncate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("1m30s", 90.0), ("500ms", 0.5), ("2", 2.0), ("0.25", 0.25), ("1h", 3600.0),
     ("1.5s", 1.5), ("0s", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "-1", "s", "5s5"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(0, 10**6), st.integers(0, 999))
def test_parse_duration_go_spelling(s: int, ms: int) -> None:
    assert parse_duration(f"{s}s{ms}ms") == pytest.approx(s + ms / 1000)


def test_parse_ports() -> None:
    assert parse_ports("15000-15002, 8080") == {15000, 15001, 15002, 8080}
    assert parse_ports("") == frozenset()
    for bad in ("0", "70000", "9-3", "x"):
        with pytest.raises(ValueError):
            parse_ports(bad)


@given(st.ip_addresses(v=4))
def test_v4_and_mapped(ip: object) -> None:
    v4, v6 = procnet.v4_and_mapped(str(ip))
    assert procnet.addr_text(socket.AF_INET, v4) == str(ip)
    assert procnet.addr_text(socket.AF_INET6, v6) == str(ip)


def test_kernel_hex_spelling() -> None:
    # as printed by /proc/net/tcp{,6} on x86_64
    assert procnet.hex_to_addr(socket.AF_INET, "0100007F") == bytes([127, 0, 0, 1])
    assert procnet.addr_text(
        socket.AF_INET6, procnet.hex_to_addr(socket.AF_INET6, "00000000000000000000000001000000")
    ) == "::1"


def test_parse_line() -> None:
    line = ("   0: 0100007F:1F90 0600007F:A1B2 01 00000000:00000000 00:00000000 00000000  "
            "1000        0 12345 1 0000000000000000 20 4 30 10 -1")
    rec = procnet.parse_line(socket.AF_INET, line)
    assert rec == (socket.AF_INET, 1, bytes([127, 0, 0, 1]), 8080, bytes([127, 0, 0, 6]),
                   0xA1B2, 1000, 12345)


def test_in_flight_from_stats() -> None:
    stats = parse_stats(
        "http.inbound_0.0.0.0_8080.downstream_rq_active: 2\n"
        "http.inbound_0.0.0.0_8080.downstream_cx_active: 5\n"
        "http.outbound_0.0.0.0_80.downstream_rq_active: 1\n"
        "http.outbound_0.0.0.0_80.downstream_cx_active: 1\n"
        "listener.0.0.0.0_15006.downstream_cx_active: 9\n"  # 4 of them TCP proxy
        "listener.127.0.0.1_15001.downstream_cx_active: 1\n"
        "listener.admin.downstream_cx_active: 1\n"
        "http.admin.downstream_rq_active: 1\n"
        "garbage line\n"
    )
    assert in_flight(stats) == 2 + 1 + 4
    # without the admin's own counters the names are filtered out: unknown, not 0
    assert in_flight(parse_stats("http.x.downstream_rq_active: 0\n")) is None
    assert missing_stats(parse_stats("listener.admin.downstream_cx_active: 1\n")) == [
        "downstream_rq_active"]


def test_in_flight_ignores_copies_and_istio_plumbing() -> None:
    base = "http.admin.downstream_rq_active: 1\nlistener.admin.downstream_cx_active: 1\n"
    noise = (
        "listener.0.0.0.0_15006.worker_0.downstream_cx_active: 4\n"
        "listener.[__]_15006.worker_13.downstream_cx_active: 4\n"
        "listener.admin.main_thread.downstream_cx_active: 1\n"
        "listener.envoy_internal_connect_originate.downstream_cx_active: 2\n"
        "listener.0.0.0.0_15090.downstream_cx_active: 1\n"
        "listener.[__]_15021.downstream_cx_active: 1\n"
        "http.stats.downstream_rq_active: 1\n"
        "http.agent.downstream_rq_active: 1\n"
    )
    assert in_flight(parse_stats(base + noise)) == 0
    real = "listener.0.0.0.0_15006.downstream_cx_active: 4\n"  # 4 TCP-proxied connections
    assert in_flight(parse_stats(base + noise + real)) == 4


def test_ipv6_passthrough_source_is_inbound() -> None:
    from drain_agent.census import Census

    c = Census(backend="proc")
    assert socket.inet_pton(socket.AF_INET6, "::6") in c.inbound_peers
    assert socket.inet_pton(socket.AF_INET, "127.0.0.6") in c.inbound_peers
    assert socket.inet_pton(socket.AF_INET6, "::1") not in c.inbound_peers


def test_event_message_is_bounded() -> None:
    assert truncate("x" * 5000) == "x" * (MAX_MESSAGE - 3) + "..."
    rep = EventReporter(None, "ns", "web-0", "drain-1")
    ev = rep.build("DrainTimedOut", "y" * 3000, warning=True)
    assert len(ev["message"]) == MAX_MESSAGE and ev["type"] == "Warning"
    assert ev["metadata"]["name"] == "web-0.drain-1.draintimedout"
    assert ev["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "ns",
                                    "name": "web-0", "fieldPath": "spec.containers{istio-proxy}"}
    assert not rep.enabled


class StuckApi:
    """An API server that accepts the first Event and then stops answering."""

    timeout = 5.0

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def create_event(self, namespace: str, event: dict[str, Any], timeout: float) -> None:
        self.calls += 1
        if self.calls > 1:
            self.release.wait(timeout)


def test_events_still_unposted_at_exit_are_logged_and_returned() -> None:
    api, lines = StuckApi(), []
    rep = EventReporter(api, "ns", "web-0", "drain-1",  # type: ignore[arg-type]
                        log=lambda msg, **kw: lines.append((msg, kw)))
    for reason in ("DrainStarted", "DrainCompleted", "ProxyGone"):
        rep.emit(reason, "m")
    started = time.monotonic()
    unsent = rep.close(flush_timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert rep.posted == ["DrainStarted"]
    assert unsent == ["DrainCompleted", "ProxyGone"]
    assert lines == [("events_unsent", {"reasons": ["DrainCompleted", "ProxyGone"],
                                        "waitedSeconds": 0.3})]
    api.release.set()


def test_deadline_from_api_only_moves_earlier_after_the_first() -> None:
    now = time.monotonic()
    d = Deadline(now, grace_seconds=30, reserve_seconds=3)
    assert d.source == "grace-period" and d.remaining(now) == pytest.approx(27)
    assert d.set_from_api(time.time() + 60, None)  # the API is the truth, even when later
    assert d.source == "deletionTimestamp" and d.remaining() == pytest.approx(57, abs=0.1)
    assert not d.set_from_api(time.time() + 90, None)  # later again: ignored
    assert d.remaining() == pytest.approx(57, abs=0.1)
    assert d.set_from_api(time.time() + 10, None)  # a shorter grace later: earlier
    assert d.remaining() == pytest.approx(7, abs=0.1)


def test_deadline_is_kubelets_timer_when_the_grace_is_known() -> None:
    """kubelet counts deletionGracePeriodSeconds from its stop call (this hook's start);
    deletionTimestamp, from the deletion instant and truncated, would waste up to ~3 s."""
    start = time.monotonic() - 1.5  # the hook started 1.5 s ago
    d = Deadline(start, grace_seconds=30, reserve_seconds=3)
    d.keep_fallback("--grace-period 30s (the pod has no deletionTimestamp: ...)")
    assert d.why.startswith("--grace-period 30s (the pod has no")
    deleted = time.time() - 1.5 - 1.2  # kubelet saw the deletion 1.2 s after it
    assert d.set_from_api(float(int(deleted + 8)), 8.0)
    assert d.source == "deletionGracePeriodSeconds"
    assert d.remaining() == pytest.approx(8 - 3 - 1.5, abs=0.05)
    d.keep_fallback("ignored once the API has spoken")
    assert d.why.startswith("deletionGracePeriodSeconds 8s")


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-01-02T03:04:05Z") == 1767323045.0


def test_usage_errors_and_version_return_a_status_instead_of_exiting(
        capsys: pytest.CaptureFixture[str]) -> None:
    from drain_agent.cli import main
    from drain_agent.status import ExitStatus

    assert main(["prestop", "--poll-interval", "x"]) is ExitStatus.USAGE
    assert "--poll-interval" in capsys.readouterr().err
    assert main(["no-such-command"]) is ExitStatus.USAGE
    assert main(["--version"]) is ExitStatus.OK
    assert "meshcfg-drain" in capsys.readouterr().out


def test_only_main_exits() -> None:
    """One place exits (``__main__``); everything else returns an ExitStatus."""
    import pathlib
    import re

    pkg = pathlib.Path(__file__).resolve().parents[2] / "drain_agent"
    exits = re.compile(r"\bsys\.exit\(|\bos\._exit\(|\bexit\(\d|\braise SystemExit\b")
    found = [f.name for f in pkg.glob("*.py") if exits.search(f.read_text())]
    assert found == ["__main__.py"]


@pytest.mark.parametrize(("status", "native"), [
    ('{"initContainers":["istio-init","istio-proxy"],"containers":["app"]}', True),
    ('{"initContainers":["istio-init"],"containers":["app","istio-proxy"]}', False),
    ('{"initContainers":null,"containers":["app","istio-proxy"]}', False),
    ('{"initContainers":"istio-proxy"}', False),   # not a list: not what Istio writes
    ("", False), ("not json", False), ("[]", False),
])
def test_native_sidecar_from_the_injection_status(status: str, native: bool) -> None:
    assert native_from_status(status) is native
    assert field_path(native) == ("spec.initContainers{istio-proxy}" if native
                                  else "spec.containers{istio-proxy}")
