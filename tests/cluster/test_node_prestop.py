"""meshcfg-drain as the real preStop hook, run by a real kubelet on the test node.

The pods are what `render` makes of `lifecycle.drainAgent` (installer init container,
emptyDir, preStop command, downward-API env: taken from kubectl_meshcfg.core.render itself),
around the harness's app and proxy stand-ins (Envoy cannot run here). Containers write
their JSON event lines (time.monotonic, the host's clock) into a hostPath directory, so
the timeline survives the pod.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterlib import ROOT, KubeCluster, poll
from node.termination import PROXY_BIN, PROXY_BIN_MOUNT, proxy_command
from nodelib import HOST_MOUNTS, KubeNode, host_usr_volume, repo_volume

from kubectl_meshcfg.core.model import Target
from kubectl_meshcfg.core.render import (
    AGENT_DIR,
    AGENT_VOLUME,
    PROXY_UID,
    agent_command,
    agent_env,
    agent_installer,
)

pytestmark = [pytest.mark.cluster, pytest.mark.node]

PY = "/usr/bin/python3"


@pytest.fixture
def outdir() -> Iterator[Path]:
    """Where containers write their event lines (any uid may write)."""
    d = Path(tempfile.mkdtemp(prefix="meshcfg-node-out-"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def logged(cmd: list[str], name: str) -> list[str]:
    """Run cmd with its stdout/stderr appended to /out/NAME.jsonl."""
    quoted = " ".join("'" + c.replace("'", "'\\''") + "'" for c in cmd)
    return ["/bin/sh", "-c", f"exec {quoted} >>/out/{name}.jsonl 2>&1"]


def drain_pod(name: str, namespace: str, node: KubeNode, out: Path, agent_image: str,
              grace: int, drain: str = "2s", extra_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """The app + the proxy stand-in with render's drain-agent delivery and preStop."""
    image = node.ensure_host_image()
    target = Target("Pod", namespace, name, {}, {}, grace_period=grace)
    command = agent_command({"lifecycle.terminationDrainDuration": drain}, target,
                            {"enabled": True}) + list(extra_args)
    mounts = [*HOST_MOUNTS, {"name": "out", "mountPath": "/out"}]
    env = [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node.name, "terminationGracePeriodSeconds": grace,
            "volumes": [host_usr_volume(), repo_volume(),
                        {"name": "out", "hostPath": {"path": str(out), "type": "Directory"}},
                        {"name": AGENT_VOLUME, "emptyDir": {}}, PROXY_BIN],
            "initContainers": [agent_installer(agent_image)],
            "containers": [
                {"name": "app", "image": image, "imagePullPolicy": "Never",
                 "command": logged([PY, "/repo/scripts/harness/app.py", "--port", "8080"], "app"),
                 "env": env, "volumeMounts": mounts,
                 "securityContext": {"runAsUser": 1000, "runAsGroup": 1000}},
                {"name": "istio-proxy", "image": image, "imagePullPolicy": "Never",
                 "command": proxy_command(["--drain-seconds", drain.rstrip("s")]),
                 "env": [*env, *agent_env()],
                 "volumeMounts": [*mounts, PROXY_BIN_MOUNT,
                                  {"name": AGENT_VOLUME, "mountPath": AGENT_DIR}],
                 "lifecycle": {"preStop": {"exec": {"command": command}}},
                 "readinessProbe": {"tcpSocket": {"port": 15006}, "periodSeconds": 1},
                 "securityContext": {"runAsUser": PROXY_UID, "runAsGroup": PROXY_UID,
                                     "readOnlyRootFilesystem": True,
                                     "allowPrivilegeEscalation": False}},
            ],
        },
    }


def events_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue  # interpreter warnings and the like
    return lines


def first(events: list[dict[str, Any]], who: str, event: str) -> float:
    for e in events:
        if e.get("event") == event and e.get("who", who) == who:
            return float(e["t"])
    raise AssertionError(f"no {who} {event!r} in {events}")


def slow_request(ip: str, seconds: float, result: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        conn = http.client.HTTPConnection(ip, 15006, timeout=seconds + 30)
        try:
            conn.request("GET", f"/delay/{seconds}")
            resp = conn.getresponse()
            result["status"] = resp.status
            resp.read()
        except OSError as e:
            result["error"] = repr(e)
        finally:
            result["done"] = time.monotonic()
            conn.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def apply_role(cluster: KubeCluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "manifests" / "drain-agent-role.yaml"))


def test_kubelet_runs_meshcfg_drain_as_the_prestop_hook(
        kube_node: KubeNode, test_namespace: str, agent_binary: Path, outdir: Path) -> None:
    cluster, ns = kube_node.cluster, test_namespace
    apply_role(cluster, ns)
    image = kube_node.ensure_drain_agent_image(agent_binary)
    pod = drain_pod("drain", ns, kube_node, outdir, image, grace=30)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    running = kube_node.wait_running(ns, "drain")
    ip = running["status"]["podIP"]
    result: dict[str, Any] = {}
    request = slow_request(ip, 6, result)
    poll(lambda: any(e.get("event") == "request_started" for e in events_of(outdir / "app.jsonl")),
         timeout=30, what="the slow request to reach the app")
    deleted = time.monotonic()
    cluster.kubectl("delete", "pod", "drain", "-n", ns, "--wait=false")
    kube_node.wait_gone(ns, "drain", timeout=120)
    request.join(timeout=30)
    gone = time.monotonic()

    assert result.get("status") == 200, result
    app, proxy = events_of(outdir / "app.jsonl"), events_of(outdir / "proxy.jsonl")
    app_term, proxy_term = first(app, "app", "sigterm"), first(proxy, "pilot-agent", "sigterm")
    # kubelet stops both containers at once: the app's SIGTERM comes right away, the
    # proxy's only after its preStop (the agent) returned, i.e. after the request ended
    assert app_term - deleted < 3.0, (app_term - deleted)
    assert proxy_term >= result["done"] - 0.5, (proxy_term, result["done"])
    assert proxy_term - deleted > 4.0, (proxy_term - deleted)
    assert gone - deleted < 30, "the pod went away within its grace period"
    reasons = [e["reason"] for e in kube_node.events(ns, "drain")]
    # the agent posted its Events through the in-cluster API (svcrelay, ServiceAccount token)
    assert "DrainStarted" in reasons and "DrainCompleted" in reasons, reasons
    assert "Killing" in reasons, reasons
    assert "FailedPreStopHook" not in reasons, reasons


def test_a_failing_prestop_yields_the_real_failed_prestop_hook_event(
        kube_node: KubeNode, test_namespace: str, agent_binary: Path, outdir: Path) -> None:
    cluster, ns = kube_node.cluster, test_namespace
    image = kube_node.ensure_drain_agent_image(agent_binary)
    pod = drain_pod("broken", ns, kube_node, outdir, image, grace=10,
                    extra_args=("--no-such-flag",))
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    kube_node.wait_running(ns, "broken")
    deleted = time.monotonic()
    cluster.kubectl("delete", "pod", "broken", "-n", ns, "--wait=false")
    kube_node.wait_gone(ns, "broken", timeout=60)
    events = kube_node.events(ns, "broken")
    failed = [e for e in events if e["reason"] == "FailedPreStopHook"]
    assert failed and failed[0]["type"] == "Warning", [e["reason"] for e in events]
    # termination goes on regardless: the proxy got SIGTERM right after the failed hook
    proxy_term = first(events_of(outdir / "proxy.jsonl"), "pilot-agent", "sigterm")
    assert proxy_term - deleted < 5.0, proxy_term - deleted


def test_kubelet_sigkills_a_container_that_ignores_sigterm_at_the_grace_period(
        kube_node: KubeNode, test_namespace: str, outdir: Path) -> None:
    cluster, ns = kube_node.cluster, test_namespace
    image = kube_node.ensure_host_image()
    script = ("import json, signal, time\n"
              "def term(*_):\n"
              "    print(json.dumps({'event': 'sigterm', 't': time.monotonic()}), flush=True)\n"
              "signal.signal(signal.SIGTERM, term)\n"
              "print(json.dumps({'event': 'started', 't': time.monotonic()}), flush=True)\n"
              "while True:\n"
              "    time.sleep(0.05)\n"
              "    print(json.dumps({'event': 'alive', 't': time.monotonic()}), flush=True)\n")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stubborn", "namespace": ns},
           "spec": {"nodeName": kube_node.name, "terminationGracePeriodSeconds": 4,
                    "volumes": [host_usr_volume(), repo_volume(),
                                {"name": "out", "hostPath": {"path": str(outdir),
                                                             "type": "Directory"}}],
                    "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never",
                                    "command": logged([PY, "-c", script], "c"),
                                    "volumeMounts": [*HOST_MOUNTS,
                                                     {"name": "out", "mountPath": "/out"}]}]}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    kube_node.wait_running(ns, "stubborn")
    deleted = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "-n", ns, "--wait=false")
    kube_node.wait_gone(ns, "stubborn", timeout=60)
    lines = events_of(outdir / "c.jsonl")
    term = first(lines, "c", "sigterm")
    last_alive = max(float(e["t"]) for e in lines if e["event"] == "alive")
    # SIGKILL comes grace seconds after kubelet's stop call, which itself lags the delete
    assert term - deleted < 3.0, term - deleted
    assert 3.5 <= last_alive - term <= 4.5 + 0.5, (last_alive - term)
