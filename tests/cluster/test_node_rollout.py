"""A rolling restart of a Deployment on the real node, with long requests in flight on
the old pods: none is lost with the drain agent as the proxy's preStop, they are lost
without it. The pods are those of the termination matrix (scripts/node/termination.py:
render's drain-agent delivery around the harness's app, Istio's real pilot-agent and the
Envoy stand-in); clients on the host stand for an ingress gateway and talk to the old
pods' IPs.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from clusterlib import poll
from node.termination import NodeScenario, parse_args
from nodelib import KubeNode

pytestmark = [pytest.mark.cluster, pytest.mark.node]

REQUEST_SECONDS = 20   # spans the whole rollout: the second old pod goes after ~10 s
GRACE = 30


def deployment(prestop: str, node: KubeNode) -> tuple[NodeScenario, dict[str, Any]]:
    args, extra = parse_args(["--prestop", prestop, "--request-seconds", str(REQUEST_SECONDS),
                              "--drain-seconds", "1", "--grace-seconds", str(GRACE),
                              "--kubectl", str(node.cluster.kubectl_bin),
                              "--kubeconfig", str(node.cluster.kubeconfig)])
    sc = NodeScenario(args, extra)
    pod = sc.spec()
    labels = {"app": "web"}
    return sc, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": sc.namespace},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": labels}, "spec": pod["spec"]}}}


def long_request(ip: str, port: int, results: list[Any]) -> threading.Thread:
    def run() -> None:
        conn = http.client.HTTPConnection(ip, port, timeout=REQUEST_SECONDS + GRACE)
        try:
            conn.request("GET", f"/delay/{REQUEST_SECONDS}")
            resp = conn.getresponse()
            resp.read()
            results.append(resp.status)
        except (OSError, http.client.HTTPException) as e:
            results.append(type(e).__name__)
        finally:
            conn.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def ready_pods(sc: NodeScenario) -> list[dict[str, Any]]:
    pods = json.loads(sc.kubectl("get", "pods", "-n", sc.namespace, "-l", "app=web",
                                 "-o", "json").stdout)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def rollout(prestop: str, node: KubeNode) -> tuple[list[Any], list[str]]:
    sc, body = deployment(prestop, node)
    try:
        sc.kubectl("create", "namespace", sc.namespace)
        poll(lambda: sc.kubectl("get", "sa", "default", "-n", sc.namespace,
                                check=False).returncode == 0, timeout=60, what="ServiceAccount")
        sc.kubectl("apply", "-n", sc.namespace, "-f",
                   str(Path(__file__).resolve().parents[2] / "manifests/drain-agent-role.yaml"))
        sc.kubectl("apply", "-f", "-", input=json.dumps(body))
        def two_ready() -> list[dict[str, Any]] | None:
            pods = ready_pods(sc)
            return pods if len(pods) == 2 else None
        old = poll(two_ready, timeout=180, what="two ready pods")
        results: list[Any] = []
        # to the app's port: istio-init's rules take the requests to the proxy
        threads = [long_request(p["status"]["podIP"], sc.inbound_port, results)
                   for p in old for _ in range(2)]
        poll(lambda: len(sc.events("app", event="request_started")) >= 4, timeout=30,
             what="the requests to reach the apps")
        started = time.monotonic()
        sc.kubectl("rollout", "restart", "deployment/web", "-n", sc.namespace)
        sc.kubectl("rollout", "status", "deployment/web", "-n", sc.namespace, "--timeout=180s")
        old_names = {p["metadata"]["name"] for p in old}
        poll(lambda: not old_names & {p["metadata"]["name"] for p in json.loads(sc.kubectl(
            "get", "pods", "-n", sc.namespace, "-o", "json").stdout)["items"]},
            timeout=GRACE + 60, what="the old pods to go away")
        for t in threads:
            t.join(timeout=REQUEST_SECONDS + GRACE)
        assert time.monotonic() - started < REQUEST_SECONDS + GRACE
        reasons = [e["reason"] for e in json.loads(sc.kubectl(
            "get", "events", "-n", sc.namespace, "-o", "json").stdout)["items"]]
        return results, reasons
    finally:
        sc.stop()


@pytest.fixture
def node(kube_node: KubeNode, agent_binary: Path) -> KubeNode:
    kube_node.ensure_host_image()
    kube_node.ensure_drain_agent_image(agent_binary)
    return kube_node


def test_a_rollout_loses_no_request_with_the_drain_agent(node: KubeNode) -> None:
    results, reasons = rollout("agent", node)
    assert results == [200] * 4, results
    assert reasons.count("DrainCompleted") >= 2, reasons


def test_the_same_rollout_loses_the_requests_in_flight_without_it(node: KubeNode) -> None:
    results, reasons = rollout("none", node)
    assert len(results) == 4 and 200 not in results, results
    assert "DrainStarted" not in reasons, reasons
