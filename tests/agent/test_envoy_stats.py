"""The stats contract against what Envoy exports under the bootstrap Istio's real
pilot-agent writes (recorded by record_envoy_stats.py: 2 idle keep-alive connections and
1 request in flight through 15006, concurrency 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drain_agent.envoy_admin import REQUIRED_SUFFIXES, in_flight, missing_stats, parse_stats

DATA = Path(__file__).with_name("data")


def recorded(case: str) -> dict[str, Any]:
    return dict(json.loads((DATA / f"envoy-stats-{case}.json").read_text()))


def suffixes(rec: dict[str, Any]) -> set[str]:
    return {p["suffix"] for p in rec["statsMatcher"]["inclusion_list"]["patterns"] if "suffix" in p}


@pytest.mark.parametrize("case", ["istio-default", "user-matcher"])
def test_filtered_names_are_unknown_not_zero(case: str) -> None:
    rec = recorded(case)
    assert not suffixes(rec) & set(REQUIRED_SUFFIXES)  # Istio's bootstrap filters both
    stats = parse_stats(rec["body"])
    assert stats == {}  # a 200 with nothing in it: what used to read as "0 in flight"
    assert in_flight(stats) is None
    assert missing_stats(stats) == list(REQUIRED_SUFFIXES)


def test_exit_on_zero_exports_connections_but_not_requests() -> None:
    rec = recorded("exit-on-zero")
    assert "downstream_cx_active" in suffixes(rec) and "downstream_rq_active" not in suffixes(rec)
    stats = parse_stats(rec["body"])
    # 3 connections open, 1 of them with a request: connections alone cannot tell
    assert stats["listener.0.0.0.0_15006.downstream_cx_active"] == 3
    assert in_flight(stats) is None
    assert missing_stats(stats) == ["downstream_rq_active"]


def test_with_the_agents_inclusions_idle_connections_are_told_apart() -> None:
    rec = recorded("agent-inclusions")
    assert set(REQUIRED_SUFFIXES) <= suffixes(rec)
    stats = parse_stats(rec["body"])
    # real Envoy's shape: a total, a copy per worker, the admin's main thread, an
    # internal listener; adding the copies in would count the 2 idle connections
    assert sum(v for k, v in stats.items() if "worker_" in k) == 3
    assert any(k.startswith("listener.envoy_internal_") for k in stats)
    assert in_flight(stats) == rec["open"]["requestsInFlight"] == 1
