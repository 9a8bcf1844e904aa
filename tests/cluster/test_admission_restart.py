"""Admission mode with Istio's real injector (pinned `istioctl kube-inject`) as the oracle, and
staleness: pods admitted under the policy inject to the same sidecar as `render`'s template;
after a config change `restart` rolls exactly the workloads whose running sidecars are stale,
changing nothing but `kubectl.kubernetes.io/restartedAt`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clusterlib import KubeCluster, poll
from istio.injector import Injector

from kubectl_meshcfg.core.formats import parse_quantity

from .livelib import (
    Meshcfg,
    deployment,
    kubectl_apply,
    remove_admission_policy,
    spc,
    wait_for_admission_policy,
)

pytestmark = [pytest.mark.cluster, pytest.mark.istio]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@pytest.fixture(scope="module")
def injector(tmp_path_factory: pytest.TempPathFactory) -> Injector:
    return Injector.create(workdir=tmp_path_factory.mktemp("injector"))


@pytest.fixture
def namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    ns = kube_cluster.create_namespace("adm")
    yield ns
    remove_admission_policy(kube_cluster)
    kube_cluster.delete_namespace(ns)


def pods_of(cluster: KubeCluster, ns: str, app: str) -> list[dict[str, Any]]:
    return list(cluster.get_json("pods", "-n", ns, "-l", f"app={app}")["items"])


def pod_of(cluster: KubeCluster, ns: str, app: str) -> dict[str, Any]:
    return dict(poll(lambda: (pods_of(cluster, ns, app) or [None])[0], timeout=120,
                     what=f"a pod of {app}"))


def sidecar(injector: Injector, obj: dict[str, Any]) -> dict[str, Any]:
    """What the injector gives the object: the proxy's args, env, resources and hooks,
    istio-init's args and resources (quantities as numbers)."""
    injected = injector.inject_one(obj)
    proxy, init = injector.proxy(injected), injector.init(injected)

    def amounts(c: dict[str, Any]) -> dict[str, dict[str, Decimal | None]]:
        return {group: {k: parse_quantity(str(v)) for k, v in values.items()}
                for group, values in injector.resources(c).items()}
    return {"proxy_args": injector.args(proxy), "proxy_config": injector.proxy_config(injected),
            "proxy_resources": amounts(proxy), "lifecycle": injector.lifecycle(proxy),
            "init_args": injector.args(init), "init_resources": amounts(init),
            "env": {k: v for k, v in injector.env(proxy).items()
                    if k not in ("ISTIO_META_WORKLOAD_NAME", "ISTIO_META_OWNER")}}


def fast_config(ns: str, log_level: str) -> dict[str, Any]:
    return spc("fast", ns, {"selector": {"matchLabels": {"tier": "fast"}},
                            "proxy": {"concurrency": 3, "logLevel": log_level},
                            "lifecycle": {"terminationDrainDuration": "9s"}})


def as_created(pod: dict[str, Any]) -> dict[str, Any]:
    """The admitted pod as a manifest (server-set fields dropped)."""
    meta = {k: pod["metadata"][k] for k in ("name", "namespace", "labels", "annotations")
            if k in pod["metadata"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod["spec"]}


def test_admitted_pods_inject_like_render_and_restart_rolls_only_stale_workloads(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, namespace: str, injector: Injector,
        tmp_path: Path) -> None:
    ns, mesh = namespace, meshcfg.mesh_ns
    kube_cluster.kubectl("label", "namespace", ns, "istio-injection=enabled")
    kubectl_apply(kube_cluster,
                  spc("ns", ns, {"proxy": {"logLevel": "warning"},
                                 "traffic": {"excludeOutboundPorts": "5432"}}),
                  spc("fast", ns, {"selector": {"matchLabels": {"tier": "fast"}},
                                   "proxy": {"concurrency": 3, "resources": {
                                       "limits": {"cpu": "3"}}},
                                   "lifecycle": {"terminationDrainDuration": "9s"}}))
    assert meshcfg("admission", "apply", "-n", ns, f"--istio-namespace={mesh}",
                   "--force-conflicts").code == 0
    wait_for_admission_policy(kube_cluster, ns)
    kubectl_apply(kube_cluster, deployment("fast", ns, {"app": "fast", "tier": "fast"}, 1),
                  deployment("plain", ns, {"app": "plain"}, 1))
    for name in ("fast", "plain"):
        admitted = pod_of(kube_cluster, ns, name)
        run = meshcfg("render", f"deployment/{name}", "-n", ns, f"--istio-namespace={mesh}",
                      "--merge", "-o", "json")
        assert run.code == 0, run.err
        assert sidecar(injector, as_created(admitted)) == sidecar(injector, run.json())

    # Pods that run an injected sidecar (made from injected templates, as a cluster with the
    # injector webhook would have them), then a config change that reaches only "fast".
    kube_cluster.kubectl("label", "namespace", ns, "istio-injection-")
    # (no CPU limit from here on: a rendered istio-init limit reads back as stale, see the
    # report of issue 15)
    kubectl_apply(kube_cluster, fast_config(ns, "info"))
    for name in ("fast", "plain"):
        kube_cluster.kubectl("delete", "deployment", name, "-n", ns, "--cascade=foreground",
                             "--wait=true")
    injected = {}
    for name, labels in (("fast", {"app": "fast", "tier": "fast"}), ("plain", {"app": "plain"})):
        kubectl_apply(kube_cluster, deployment(name, ns, labels, 1))
        run = meshcfg("render", f"deployment/{name}", "-n", ns, f"--istio-namespace={mesh}",
                      "--merge", "-o", "json")
        injected[name] = injector.inject_one(run.json())
        kube_cluster.kubectl("delete", "deployment", name, "-n", ns, "--cascade=foreground",
                             "--wait=true")
        body = {k: injected[name][k] for k in ("apiVersion", "kind", "metadata", "spec")}
        body["metadata"] = {"name": name, "namespace": ns}
        kubectl_apply(kube_cluster, body)
        poll(lambda n=name: len(pods_of(kube_cluster, ns, n)) == 1, timeout=120,
             what=f"one pod of {name}")
    quiet = meshcfg("restart", "-n", ns, f"--istio-namespace={mesh}")
    assert quiet.code == 0 and quiet.out.strip() == "0 restarted, 0 skipped", \
        meshcfg("lint", "pods", "-n", ns).out
    kubectl_apply(kube_cluster, fast_config(ns, "debug"))
    lint = meshcfg("lint", "pods", "-n", ns, "-o", "json")
    stale = {item["target"]["name"] for item in lint.json()["items"]
             if any(w["code"] == "StaleSidecar" for w in item["warnings"])}
    assert {name.split("-")[0] for name in stale} == {"fast"}
    before = {n: kube_cluster.get_json("deployment", n, "-n", ns) for n in ("fast", "plain")}
    dry = meshcfg("restart", "-n", ns, f"--istio-namespace={mesh}", "--dry-run=client")
    assert f"deployment.apps/fast ({ns}) restarted (dry run): 1 stale pod" in dry.out
    assert kube_cluster.get_json("deployment", "fast", "-n", ns)["metadata"]["generation"] == \
        before["fast"]["metadata"]["generation"]
    run = meshcfg("restart", "-n", ns, f"--istio-namespace={mesh}")
    assert run.code == 0, run.err
    assert run.out.splitlines() == [f"deployment.apps/fast ({ns}) restarted: 1 stale pod",
                                    "1 restarted, 0 skipped"]
    after = {n: kube_cluster.get_json("deployment", n, "-n", ns) for n in ("fast", "plain")}
    assert after["plain"]["metadata"]["generation"] == before["plain"]["metadata"]["generation"]
    template = after["fast"]["spec"]["template"]
    stamped = template["metadata"]["annotations"].pop(RESTARTED_AT)
    assert stamped
    assert template == before["fast"]["spec"]["template"]
