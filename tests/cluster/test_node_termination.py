"""The termination matrix on the real node (scripts/node/matrix.py): the harness's
scenarios and the API-only ones (delete --grace-period, eviction) as real pods stopped by
the real kubelet, with the drain agent, without it, and with the netstat preStop.

Each test reads one scenario's result; the scenarios run once per session, two at a time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from clusterlib import ROOT
from nodelib import KubeNode

sys.path.insert(0, str(ROOT / "scripts" / "node"))

import matrix  # noqa: E402
from node.config import GATEWAY  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.node]

RUN = ["agent-long", "none-long", "netstat-listener-closed", "agent-too-long",
       "agent-grace-shorter-than-drain", "agent-native", "none-native",
       "agent-late-requests", "none-late-requests", "agent-outbound", "none-outbound",
       "agent-delete-grace", "none-delete-grace", "agent-evict", "none-evict"]


@pytest.fixture(scope="module")
def results(kube_node_module: KubeNode, agent_binary: Path) -> dict[str, dict[str, Any]]:
    kube_node_module.ensure_host_image()
    kube_node_module.ensure_drain_agent_image(agent_binary)
    cluster = kube_node_module.cluster
    return matrix.run_all(RUN, str(cluster.kubectl_bin), str(cluster.kubeconfig), parallel=2)


def get(results: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    r = results[name]
    assert "error" not in r, r
    return r


@pytest.mark.parametrize("name", ["agent-long", "agent-delete-grace", "agent-evict",
                                  "agent-outbound"])
def test_the_agent_keeps_the_proxy_up_until_the_request_is_answered(
        results: dict[str, dict[str, Any]], name: str) -> None:
    r = get(results, name)
    assert (r["sent"], r["succeeded"]) == (1, 1), r
    assert r["prestop_exit"] == 0 and not r["failed_prestop_hook"], r
    # kubelet sends the proxy SIGTERM only once the hook returned, after the answer
    assert r["proxy_sigterm_at"] >= r["prestop_finished_at"] - 0.5, r
    assert r["proxy_sigterm_at"] > r["request_seconds"] - 1.5, r
    assert not r["proxy_killed"], r
    assert {"DrainStarted", "DrainCompleted", "Killing"} <= set(r["event_reasons"]), r


@pytest.mark.parametrize("name", ["none-long", "none-delete-grace", "none-evict",
                                  "none-outbound", "netstat-listener-closed"])
def test_without_the_agent_the_request_in_flight_is_lost(
        results: dict[str, dict[str, Any]], name: str) -> None:
    r = get(results, name)
    assert r["sent"] == 1 and r["failed"] == 1, r
    # pilot-agent's SIGTERM came before the request could finish
    assert r["proxy_sigterm_at"] < r["request_seconds"], r


def test_delete_grace_period_is_the_agents_deadline(results: dict[str, dict[str, Any]]) -> None:
    agent = get(results, "agent-delete-grace")["agent"]
    assert agent["deadlineSource"] == "deletionGracePeriodSeconds", agent
    assert "10s" in agent["deadline"], agent


def test_a_request_longer_than_the_budget_ends_the_hook_in_time(
        results: dict[str, dict[str, Any]]) -> None:
    r = get(results, "agent-too-long")
    assert r["failed"] == 1 and r["prestop_exit"] == 1, r
    assert "DrainTimedOut" in r["event_reasons"], r
    # the hook gave pilot-agent its drain before kubelet's deadline (kubelet's grace timer
    # starts no later than the hook): no SIGKILL. When the pod is gone after that is kubelet's
    # and the API server's latency, not the agent's, so it is not bounded here.
    budget_end = r["prestop_started_at"] + r["grace_seconds"]
    assert r["prestop_finished_at"] + r["drain_seconds"] <= budget_end, r
    assert not r["proxy_killed"] and r["pod_gone_at"] is not None, r


def test_grace_shorter_than_drain_returns_at_once(results: dict[str, dict[str, Any]]) -> None:
    r = get(results, "agent-grace-shorter-than-drain")
    # no budget (D + 2 s reserve > G): the agent returns after one look, whatever is open
    # (the 2 s request may have ended already when the hook starts late under load)
    assert r["agent"]["polls"] <= 2, r
    # pilot-agent's drain (5 s) outlasts the grace period (3 s): kubelet SIGKILLs the proxy
    assert r["proxy_killed"], r


def test_native_sidecar_prestop_runs_in_parallel_with_the_app_shutdown(
        results: dict[str, dict[str, Any]]) -> None:
    """Real kubelet: a restartable init container's preStop starts at once (the harness's
    stand-in started it after the app had exited); only its SIGTERM waits for the app."""
    r, none = get(results, "agent-native"), get(results, "none-native")
    assert r["succeeded"] == 1 and none["succeeded"] == 1, (r, none)
    assert r["prestop_started_at"] < r["app_exited_at"], r
    assert r["proxy_sigterm_at"] >= r["app_exited_at"] - 0.2, r
    assert none["proxy_sigterm_at"] >= none["app_exited_at"] - 0.2, none


def test_late_requests_are_served_only_with_the_agents_minimum_drain(
        results: dict[str, dict[str, Any]]) -> None:
    agent, none = get(results, "agent-late-requests"), get(results, "none-late-requests")
    assert agent["late_succeeded"] == agent["late_sent"] == 20, agent
    assert none["late_succeeded"] < none["late_sent"], none


@pytest.mark.parametrize("name", ["agent-long", "none-long", "agent-native"])
def test_istio_init_captures_the_requests_to_the_app_port(
        results: dict[str, dict[str, Any]], name: str) -> None:
    """The real pilot-agent's istio-iptables installed stock Istio's rules: the clients'
    requests to the app port reached the proxy's 15006 (its SO_ORIGINAL_DST says 8080)."""
    capture = get(results, name)["capture"]
    assert capture["istio_init"] and capture["istio_rules"] >= 10, capture
    assert [d.rsplit(":", 1)[1] for d in capture["inbound_original_destinations"]] == ["8080"]


def test_istio_init_captures_the_apps_outbound_calls(results: dict[str, dict[str, Any]]) -> None:
    """The app called the external service itself; the rules took the call to 15001."""
    r = get(results, "agent-outbound")
    assert r["succeeded"] == 1, r
    assert [d.startswith(f"{GATEWAY}:") for d in
            r["capture"]["outbound_original_destinations"]] == [True], r["capture"]


def test_the_python_pilot_agent_stand_in_runs_without_capture(
        results: dict[str, dict[str, Any]]) -> None:
    """istio-init is the real pilot-agent's: the stand-in's pod has none, and its clients
    reach 15006 directly (nothing was redirected)."""
    capture = get(results, "netstat-listener-closed")["capture"]
    assert capture == {"istio_init": False, "istio_rules": 0,
                       "inbound_original_destinations": [],
                       "outbound_original_destinations": []}, capture
