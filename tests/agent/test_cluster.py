"""The agent against the real kube-apiserver: its Role, the deadline, the Events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import APP_UID, ROOT, Pod
from clusterlib import KubeCluster, poll

from drain_agent.deadline import parse_timestamp
from drain_agent.events import EventReporter
from drain_agent.kubeapi import ApiError, KubeApi

pytestmark = pytest.mark.cluster
ROLE = ROOT / "manifests" / "drain-agent-role.yaml"


def make_pod(kube: KubeCluster, ns: str, name: str, grace: int = 30) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        # bound to a node: deletion is graceful (deletionTimestamp set, pod kept)
        "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": grace,
                 "containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(pod))
    return dict(kube.get_json("pod", name, "-n", ns))


def token_file(kube: KubeCluster, ns: str, tmp: Path) -> Path:
    path = tmp / "token"
    path.write_text(kube.service_account_token(ns, "default"))
    return path


def status_of(fn: Any) -> int | None:
    try:
        fn()
    except ApiError as e:
        return e.status
    return 200


def test_role_allows_events_and_pod_get_only(kube_cluster: KubeCluster, test_namespace: str,
                                             tmp_path: Path) -> None:
    ns = test_namespace
    kube_cluster.kubectl("apply", "-n", ns, "-f", str(ROLE))
    pod = make_pod(kube_cluster, ns, "web-0")
    other = kube_cluster.create_namespace("other")
    try:
        make_pod(kube_cluster, other, "web-0")
        api = KubeApi(kube_cluster.server, str(token_file(kube_cluster, ns, tmp_path)),
                      str(kube_cluster.ca_file), 10)
        # RBAC reaches the authorizer's cache shortly after the apply
        poll(lambda: status_of(lambda: api.get_pod(ns, "web-0")) == 200, timeout=30,
             what="pod get allowed")
        assert api.get_pod(ns, "web-0")["metadata"]["uid"] == pod["metadata"]["uid"]
        rep = EventReporter(api, ns, "web-0", "drain-test")
        rep.pod_uid = pod["metadata"]["uid"]
        api.create_event(ns, rep.build("DrainStarted", "test"), timeout=10)
        ev = kube_cluster.get_json("event", "web-0.drain-test.drainstarted", "-n", ns)
        assert ev["involvedObject"]["uid"] == pod["metadata"]["uid"]
        assert ev["reportingComponent"] == "meshcfg.io/drain-agent"

        base = f"/api/v1/namespaces/{ns}"
        refused = {
            "list pods": lambda: api.request("GET", f"{base}/pods"),
            "watch pods": lambda: api.request("GET", f"{base}/pods?watch=1", timeout=5),
            "delete pod": lambda: api.request("DELETE", f"{base}/pods/web-0"),
            "patch pod": lambda: api.request("PUT", f"{base}/pods/web-0", api.get_pod(ns, "web-0")),
            "pod status": lambda: api.request("GET", f"{base}/pods/web-0/status"),
            "exec": lambda: api.request("POST", f"{base}/pods/web-0/exec?command=true"),
            "get events": lambda: api.request("GET", f"{base}/events"),
            "get secrets": lambda: api.request("GET", f"{base}/secrets"),
            "other ns pod": lambda: api.get_pod(other, "web-0"),
            "other ns event": lambda: api.create_event(
                other, EventReporter(api, other, "web-0", "x").build("DrainStarted", "x"), 10),
            "nodes": lambda: api.request("GET", "/api/v1/nodes"),
        }
        got = {name: status_of(fn) for name, fn in refused.items()}
        assert got == {name: 403 for name in refused}, got
        # and kubectl agrees (the same token, its own view)
        cfg = kube_cluster.kubeconfig_for_token(api._token() or "", ns)
        can = kube_cluster.kubectl("auth", "can-i", "--list", "--kubeconfig", str(cfg)).stdout
        assert "events" in can and "pods" in can
    finally:
        kube_cluster.delete_namespace(other)


class ClusterAgent:
    def __init__(self, kube: KubeCluster, ns: str, pod: Pod, tmp: Path) -> None:
        self.kube, self.ns, self.pod, self.tmp = kube, ns, pod, tmp
        self.token = token_file(kube, ns, tmp)

    def start(self, *flags: str) -> subprocess.Popen[str]:
        # The agent runs in the host network namespace (the API server listens on
        # loopback there) and counts the pod's namespace through --net-dir.
        env = dict(os.environ, PYTHONPATH=str(ROOT), POD_NAME="web-0", POD_NAMESPACE=self.ns,
                   MESHCFG_DRAIN_API_SERVER=self.kube.server,
                   MESHCFG_DRAIN_TOKEN_FILE=str(self.token),
                   MESHCFG_DRAIN_CA_FILE=str(self.kube.ca_file),
                   MESHCFG_DRAIN_NET_DIR=self.pod.net_dir,
                   MESHCFG_DRAIN_ADMIN_URL="http://127.0.0.1:1",
                   MESHCFG_DRAIN_CONTAINER_LOG="", MESHCFG_DRAIN_STATE_DIR=str(self.tmp),
                   MESHCFG_DRAIN_GRACE_PERIOD="120", MESHCFG_DRAIN_TERMINATION_DRAIN_DURATION="1s",
                   MESHCFG_DRAIN_POLL_INTERVAL="100ms", MESHCFG_DRAIN_API_TIMEOUT="2s",
                   MESHCFG_DRAIN_MIN_DRAIN="0s")
        return subprocess.Popen([sys.executable, "-m", "drain_agent", "prestop", *flags],
                                stdout=subprocess.PIPE, text=True, env=env)

    def events(self) -> list[dict[str, Any]]:
        items = self.kube.get_json("events", "-n", self.ns,
                                   "--field-selector", "involvedObject.name=web-0")["items"]
        return list(items)


@pytest.fixture
def cluster_agent(kube_cluster: KubeCluster, test_namespace: str, pod: Pod,
                  tmp_path: Path) -> Iterator[ClusterAgent]:
    kube_cluster.kubectl("apply", "-n", test_namespace, "-f", str(ROLE))
    pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 8080}]}, uid=2000)
    yield ClusterAgent(kube_cluster, test_namespace, pod, tmp_path)


def deletion_timestamp(kube: KubeCluster, ns: str) -> float:
    ts = kube.get_json("pod", "web-0", "-n", ns)["metadata"]["deletionTimestamp"]
    return parse_timestamp(ts)


def test_deadline_is_kubelets_timer_for_the_deletion_grace(cluster_agent: ClusterAgent) -> None:
    kube, ns = cluster_agent.kube, cluster_agent.ns
    pod = make_pod(kube, ns, "web-0", grace=30)
    kube.kubectl("delete", "pod", "web-0", "-n", ns, "--grace-period=8", "--wait=false")
    deadline = deletion_timestamp(kube, ns)
    started = time.time()  # kubelet's stop call: it counts the 8 s from here
    p = cluster_agent.start()
    out, _ = p.communicate(timeout=30)
    ended = time.time()
    lines = [json.loads(x) for x in out.splitlines()]
    final = lines[-1]
    assert p.returncode == 1 and final["msg"] == "drain_timed_out", lines
    assert final["deadlineSource"] == "deletionGracePeriodSeconds"
    assert lines[0]["deadlineSource"] == "pending"  # the pod read had not answered yet
    # start + 8 s - (terminationDrainDuration 1 s + 2 s): not start + 120 s, and not the
    # earlier (truncated, from the deletion instant) deletionTimestamp - 3 s
    assert started + 5 - 0.2 <= ended <= started + 5 + 1.0, (started, ended)
    assert ended > deadline - 3

    evs = poll(lambda: [e for e in cluster_agent.events()
                        if e["reason"] in ("DrainStarted", "DrainTimedOut")]
               if len(cluster_agent.events()) >= 2 else None, timeout=10, what="events")
    by_reason = {e["reason"]: e for e in evs}
    assert set(by_reason) == {"DrainStarted", "DrainTimedOut"}
    for e in evs:
        assert e["involvedObject"]["uid"] == pod["metadata"]["uid"]
        assert e["involvedObject"]["fieldPath"] == "spec.containers{istio-proxy}"
        assert len(e["message"]) <= 1024
    timed_out = by_reason["DrainTimedOut"]
    assert timed_out["type"] == "Warning"
    assert "1x inbound :8080" in timed_out["message"], timed_out["message"]
    assert "deletionGracePeriodSeconds 8s" in timed_out["message"]
    # posted after the pod read: never "from --grace-period" when the API had the answer
    assert "deadline from deletionGracePeriodSeconds 8s" in by_reason["DrainStarted"]["message"]

    # kubelet may run the hook again: same deadline, no duplicate events
    p2 = cluster_agent.start()
    out2, _ = p2.communicate(timeout=30)
    assert p2.returncode == 1
    assert json.loads(out2.splitlines()[0])["resumed"] is True
    reasons = sorted(e["reason"] for e in cluster_agent.events())
    assert reasons == ["DrainStarted", "DrainTimedOut"], reasons


def test_a_shorter_second_deletion_moves_the_deadline(cluster_agent: ClusterAgent) -> None:
    kube, ns = cluster_agent.kube, cluster_agent.ns
    make_pod(kube, ns, "web-0", grace=60)
    kube.kubectl("delete", "pod", "web-0", "-n", ns, "--grace-period=60", "--wait=false")
    first = deletion_timestamp(kube, ns)
    started = time.time()
    p = cluster_agent.start()
    assert p.stdout is not None
    assert json.loads(p.stdout.readline())["msg"] == "drain_started"
    kube.kubectl("delete", "pod", "web-0", "-n", ns, "--grace-period=6", "--wait=false")
    second_at = time.time()
    second = deletion_timestamp(kube, ns)
    assert second < first - 30
    out, _ = p.communicate(timeout=30)
    ended = time.time()
    assert p.returncode == 1
    # 6 s counted from the hook's start (earlier than kubelet's new timer: safe), seen at
    # the next re-read of the pod (every 2 s)
    assert started + 3 - 0.2 <= ended <= max(started + 3, second_at) + 2.5, (started, ended)
    assert ended < first - 30


def test_a_pod_without_deletion_is_a_kubelet_initiated_stop(cluster_agent: ClusterAgent) -> None:
    """Eviction by kubelet and graceful node shutdown stop the pod without deleting it:
    the deadline is the grace passed in, and the Events say why."""
    kube, ns = cluster_agent.kube, cluster_agent.ns
    make_pod(kube, ns, "web-0", grace=60)
    p = cluster_agent.start("--grace-period", "5s")
    out, _ = p.communicate(timeout=30)
    final = json.loads(out.splitlines()[-1])
    assert p.returncode == 1 and final["deadlineSource"] == "grace-period", final
    assert "the pod has no deletionTimestamp" in final["deadline"]
    started = poll(lambda: [e for e in cluster_agent.events() if e["reason"] == "DrainStarted"],
                   timeout=10, what="DrainStarted")
    assert "deadline from --grace-period 5s (the pod has no deletionTimestamp" in \
        started[0]["message"], started[0]["message"]


class SlowApi(BaseHTTPRequestHandler):
    delay = 3.0
    hits: list[str] = []

    def _slow(self) -> None:
        SlowApi.hits.append(f"{self.command} {self.path}")
        time.sleep(self.delay)  # the API server being slow is the point of this test
        body = b'{"metadata": {"uid": "u1"}}'
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_GET = _slow  # noqa: N815
    do_POST = _slow  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("api", ["slow", "down"])
def test_a_slow_or_absent_api_never_delays_the_drain(pod: Pod, tmp_path: Path,
                                                     api: str) -> None:
    pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), SlowApi)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    if api == "down":
        srv.shutdown()
        srv.server_close()
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), POD_NAME="web-0", POD_NAMESPACE="ns",
                   MESHCFG_DRAIN_API_SERVER=f"http://127.0.0.1:{port}",
                   MESHCFG_DRAIN_TOKEN_FILE=str(tmp_path / "none"),
                   MESHCFG_DRAIN_NET_DIR=pod.net_dir, MESHCFG_DRAIN_ADMIN_URL="http://127.0.0.1:1",
                   MESHCFG_DRAIN_CONTAINER_LOG="", MESHCFG_DRAIN_STATE_DIR="",
                   MESHCFG_DRAIN_API_TIMEOUT="5s", MESHCFG_DRAIN_MIN_DRAIN="0s")
        p = subprocess.Popen([sys.executable, "-m", "drain_agent", "prestop"],
                             stdout=subprocess.PIPE, text=True, env=env)
        assert p.stdout is not None
        stamps = []
        for line in p.stdout:
            stamps.append((time.monotonic(), json.loads(line)))
        p.wait(10)
        end = time.monotonic()
        assert p.returncode == 0
        started = next(t for t, r in stamps if r["msg"] == "drain_started")
        completed = next(t for t, r in stamps if r["msg"] == "drain_completed")
        assert completed - started < 0.5, stamps  # no waiting for the pod read
        # the last Event's bounded wait (FINAL_EVENT_WAIT, 2 s) + exit
        assert end - completed < 2.5, (end - completed)
    finally:
        if api == "slow":
            srv.shutdown()
            srv.server_close()
