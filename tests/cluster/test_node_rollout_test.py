"""`kubectl meshcfg rollout-test` on the real node: a Deployment whose pods (those of
test_node_rollout.py: render's drain-agent delivery, the real pilot-agent, the Envoy
stand-in)
serve 20 s requests; the command's load generator pod keeps four of them in flight
straight to the ready endpoints (no kube-proxy here) while the Deployment restarts.

With the drain agent as the proxy's preStop nothing is lost (exit 0); without it the
requests in flight on the old pods are cut (exit 3); the report's counts and each old
pod's timeline say so. The command runs as a ServiceAccount bound only to
manifests/rbac/meshcfg-rollout-tester.yaml. Also: the refusal below two ready replicas,
and the generator pod deleted when the command gets SIGINT.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clusterlib import poll
from node.termination import APP_PORT, NodeScenario
from nodelib import KubeNode

from cluster.test_node_rollout import deployment

pytestmark = [pytest.mark.cluster, pytest.mark.node]

MESHCFG = str(Path(sys.executable).parent / "kubectl-meshcfg")
ROOT = Path(__file__).resolve().parents[2]
GENERATOR = "app.kubernetes.io/name=meshcfg-rollout-test"


def _interruptible() -> None:
    """Ctrl-C's disposition in the child, as in a terminal: a test run started in the
    background (a shell without job control, `nohup ... &`) inherits SIGINT ignored, and
    Python then keeps ignoring it, so the SIGINT test would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Setup:
    node: KubeNode
    sc: NodeScenario
    kubeconfig: Path
    image: str

    def meshcfg(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [MESHCFG, "rollout-test", "deploy/web", "--kubeconfig", str(self.kubeconfig),
             "--image", self.image, "--node", self.node.name, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_interruptible)

    def generators(self) -> list[dict[str, Any]]:
        out = self.sc.kubectl("get", "pods", "-n", self.sc.namespace, "-l", GENERATOR,
                              "-o", "json").stdout
        return list(json.loads(out)["items"])


def service(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"},
                     # the app's port: istio-init's rules take the requests to the proxy
                     "ports": [{"name": "http", "port": 80, "targetPort": APP_PORT}]}}


def kubeconfig_of_a_tester(node: KubeNode, namespace: str) -> Path:
    cluster = node.cluster
    cluster.kubectl("apply", "-f", str(ROOT / "manifests/rbac/meshcfg-rollout-tester.yaml"))
    token = cluster.service_account_token(namespace, "rollout-tester")
    cluster.kubectl("create", "rolebinding", "rollout-tester", "-n", namespace,
                    "--clusterrole=meshcfg-rollout-tester",
                    f"--serviceaccount={namespace}:rollout-tester")
    return cluster.kubeconfig_for_token(token, namespace)


@pytest.fixture
def node(kube_node: KubeNode, agent_binary: Path) -> KubeNode:
    kube_node.ensure_host_image()
    kube_node.ensure_drain_agent_image(agent_binary)
    kube_node.ensure_python_image()
    return kube_node


def start(node: KubeNode, prestop: str, replicas: int = 2) -> Iterator[Setup]:
    sc, body = deployment(prestop, node)
    body["spec"]["replicas"] = replicas
    try:
        sc.kubectl("create", "namespace", sc.namespace)
        poll(lambda: sc.kubectl("get", "sa", "default", "-n", sc.namespace,
                                check=False).returncode == 0, timeout=60, what="ServiceAccount")
        sc.kubectl("apply", "-n", sc.namespace, "-f", str(ROOT / "manifests/drain-agent-role.yaml"))
        sc.kubectl("apply", "-f", "-", input=json.dumps(body))
        sc.kubectl("apply", "-f", "-", input=json.dumps(service(sc.namespace)))
        sc.kubectl("rollout", "status", "deployment/web", "-n", sc.namespace, "--timeout=180s")
        yield Setup(node, sc, kubeconfig_of_a_tester(node, sc.namespace), node.ensure_python_image())
    finally:
        sc.stop()


@pytest.fixture
def with_agent(node: KubeNode) -> Iterator[Setup]:
    yield from start(node, "agent")


@pytest.fixture
def without_agent(node: KubeNode) -> Iterator[Setup]:
    yield from start(node, "none")


@pytest.fixture
def single(node: KubeNode) -> Iterator[Setup]:
    yield from start(node, "agent", replicas=1)


LOAD = ("--via", "endpoints", "--path", "/delay/20", "-c", "4", "--timeout", "5m")


def report(setup: Setup, code: int) -> dict[str, Any]:
    proc = setup.meshcfg(*LOAD, "-o", "json")
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == code, (proc.returncode, err, out[-3000:])
    assert setup.generators() == [], "the load generator pod was left behind"
    result: dict[str, Any] = json.loads(out)
    return result


def in_order(seen: list[str], *prefixes: str) -> bool:
    """Each prefix starts an entry, in this order (entries of the same second may swap:
    those are kept in the order the prefixes give when their times are equal)."""
    found = [next((i for i, w in enumerate(seen) if w.startswith(p)), -1) for p in prefixes]
    return -1 not in found and found == sorted(found)


def whats(pod: dict[str, Any]) -> list[str]:
    return [entry["what"] for entry in pod["timeline"]]


def test_rollout_test_with_the_drain_agent_loses_nothing_and_shows_the_drain(
        with_agent: Setup) -> None:
    r = report(with_agent, 0)
    requests = r["requests"]
    assert requests["failed"] == 0 and requests["sent"] >= 4, requests
    assert requests["succeeded"] == requests["sent"]
    assert set(requests["byStatus"]) == {"200"}
    assert sum(s["sent"] for s in requests["bySecond"]) == requests["sent"]
    # the four requests in flight when the restart began were among them
    assert sum(s["sent"] for s in requests["bySecond"] if s["second"] < 0) >= 4
    assert r["verdict"] == {"result": "Pass", "exitCode": 0, "message": r["verdict"]["message"]}
    assert len(r["pods"]) == 2
    for pod in r["pods"]:
        seen = whats(pod)
        assert in_order(seen, "deleted (grace period 30s)",
                        "istio-proxy: preStop hook starts (SIGTERM after it)", "DrainStarted: ",
                        "DrainCompleted: ", "istio-proxy: preStop hook ends, SIGTERM",
                        "istio-proxy: exited (exit 0", "pod gone from the API"), seen
        assert in_order(seen, "deleted (grace period 30s)", "app: SIGTERM", "app: exited"), seen
        assert pod["sigkilled"] == []
        at = {e["what"].split(":")[0]: e["at"] for e in pod["timeline"]}
        # the drain held the proxy until the requests in flight ended, well after deletion
        assert at["DrainCompleted"] - pod["deletedAt"] > 3, pod["timeline"]
    assert not [w for w in r["warnings"] if w["reason"] == "FailedPreStopHook"]


def test_rollout_test_without_the_agent_reports_the_requests_cut(without_agent: Setup) -> None:
    r = report(without_agent, 3)
    requests = r["requests"]
    assert requests["failed"] >= 4, requests
    assert requests["failed"] + requests["succeeded"] == requests["sent"]
    assert len(requests["failures"]) == requests["failed"]
    assert set(requests["byStatus"]) - {"200"}, requests["byStatus"]
    assert r["verdict"]["result"] == "Fail" and r["verdict"]["exitCode"] == 3
    assert f"{requests['failed']} of {requests['sent']} requests failed" in r["verdict"]["message"]
    for pod in r["pods"]:
        seen = whats(pod)
        assert "istio-proxy: SIGTERM" in seen and "app: SIGTERM" in seen, seen
        assert not any(w.startswith("Drain") for w in seen), seen
    # each failure ended after the first old pod's deletion
    first_deleted = min(p["deletedAt"] for p in r["pods"])
    assert all(f["end"] > first_deleted for f in requests["failures"]), requests["failures"]


def test_rollout_test_text_output_reads_like_describe(with_agent: Setup) -> None:
    proc = with_agent.meshcfg(*LOAD)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, (err, out)
    assert out.startswith(f"Deployment: web.{with_agent.sc.namespace}\n"), out
    assert "Requests: " in out and " 0 failed\n" in out, out
    assert out.count("Old pod web-") == 2, out
    assert "DrainCompleted" in out and "Verdict: PASS: all " in out, out


def test_rollout_test_refuses_a_single_ready_replica_without_yes(single: Setup) -> None:
    proc = single.meshcfg(*LOAD)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (err, out)
    assert err.startswith("error: deployment/web in namespace ") and "1 ready replica" in err
    assert "--yes" in err and out == ""
    assert single.generators() == []


def test_rollout_test_deletes_its_generator_on_sigint(with_agent: Setup) -> None:
    proc = with_agent.meshcfg(*LOAD)
    assert proc.stderr is not None
    # the generator pod exists and sends: the command prints its restart line next
    for line in proc.stderr:
        if line.startswith("... restarting deployment/web"):
            break
    else:
        raise AssertionError(f"no restart line; exit {proc.wait()}")
    assert len(with_agent.generators()) == 1
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Aborted!" in err, err
    assert with_agent.generators() == []


@pytest.mark.parametrize("method", ["--delete-pods", "--evict"])
def test_rollout_test_deletes_or_evicts_the_pods_one_at_a_time(with_agent: Setup,
                                                               method: str) -> None:
    proc = with_agent.meshcfg(*LOAD, method, "-o", "json")
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, (err, out[-3000:])
    r = json.loads(out)
    assert r["method"] == method.lstrip("-") and r["requests"]["failed"] == 0, r["requests"]
    first, second = sorted(r["pods"], key=lambda p: p["deletedAt"])
    # the second old pod goes only once a replacement of the first serves (deletedAt comes
    # from deletionTimestamp, whole seconds: up to 1 s early)
    serving = [p["servingAt"] for p in r["replacements"]]
    assert len(serving) == 2 and serving[0] > first["deletedAt"], r["replacements"]
    assert second["deletedAt"] >= serving[0] - 1, (second, r["replacements"])
    for pod in (first, second):
        assert in_order(whats(pod), "deleted (grace period 30s)", "DrainStarted: ",
                        "DrainCompleted: ", "pod gone from the API"), whats(pod)
    assert with_agent.generators() == []
