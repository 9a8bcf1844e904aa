"""Admission mode on the real v1.36.3 API server: `kubectl meshcfg admission apply` installs a
MutatingAdmissionPolicy and per-namespace params; Deployments created afterwards get pods
(made by the real kube-controller-manager) whose annotations and istio-proxy/istio-init
overrides equal what `render` writes for that workload, across the global / namespace /
workload / annotation layers and both precedence modes, while the Deployments stay as
written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from clusterlib import KubeCluster, poll

from kubectl_meshcfg.core import admission
from kubectl_meshcfg.core.formats import parse_quantity

from .livelib import (
    Meshcfg,
    deployment,
    kubectl_apply,
    remove_admission_policy,
    spc,
    wait_for_admission_policy,
)

pytestmark = pytest.mark.cluster

HASH = "meshcfg.io/config-hash"
MANAGED = "meshcfg.io/managed-annotations"
ADDED = ("istio-proxy", "istio-init", "meshcfg-drain-install", "meshcfg-drain")


@pytest.fixture(autouse=True)
def no_policy_left(kube_cluster: KubeCluster) -> Iterator[None]:
    yield
    remove_admission_policy(kube_cluster)


def injected_namespace(cluster: KubeCluster) -> str:
    ns = cluster.create_namespace("adm")
    cluster.kubectl("label", "namespace", ns, "istio-injection=enabled")
    return ns


def configs(mesh: str, ns: str, precedence: str) -> list[dict[str, Any]]:
    fast = {"matchLabels": {"tier": "fast"}}
    return [
        spc("global", mesh, {"precedence": precedence,
                             "proxy": {"logLevel": "error", "resources": {
                                 "requests": {"cpu": "150m"}}}}),
        spc("ns", ns, {"proxy": {"resources": {"limits": {"memory": "768Mi"}}},
                       "traffic": {"excludeOutboundPorts": "5432"}}),
        spc("fast", ns, {"selector": fast, "proxy": {"concurrency": 4, "logLevel": "info",
                                                      "resources": {"limits": {"cpu": "3"}}},
                         "traffic": {"excludeInboundPorts": "9090"}}),
        spc("drain", ns, {"selector": {"matchLabels": {"drain": "yes"}},
                          "lifecycle": {"terminationDrainDuration": "7s",
                                        "drainAgent": {"enabled": True}}}),
    ]


def workloads(ns: str) -> list[dict[str, Any]]:
    drained = deployment("drained", ns, {"app": "drained", "drain": "yes"}, replicas=1)
    drained["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 45
    return [
        deployment("plain", ns, {"app": "plain"}, replicas=1),
        deployment("fast", ns, {"app": "fast", "tier": "fast"}, replicas=1),
        deployment("own", ns, {"app": "own", "tier": "fast"}, replicas=1,
                   annotations={"sidecar.istio.io/logLevel": "debug", "team": "a"}),
        deployment("shared", ns, {"app": "shared"}, replicas=1,
                   annotations={"sidecar.istio.io/proxyCPU": "300m"}),
        drained,
        deployment("merge", ns, {"app": "merge"}, replicas=1,
                   annotations={"proxy.istio.io/config": "concurrency: 1\n"}),
        deployment("optout", ns, {"app": "optout", "sidecar.istio.io/inject": "false"},
                   replicas=1),
    ]


def pod_of(cluster: KubeCluster, ns: str, app: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        items = cluster.get_json("pods", "-n", ns, "-l", f"app={app}")["items"]
        return items[0] if items else None
    return dict(poll(found, timeout=120, what=f"a pod of deployment {app}"))


def rendered(meshcfg: Meshcfg, ns: str, name: str) -> dict[str, Any]:
    run = meshcfg("render", f"deployment/{name}", "-n", ns,
                  f"--istio-namespace={meshcfg.mesh_ns}", "-o", "json")
    assert run.code == 0, run.err
    return dict(run.json()["spec"]["template"])


def by_name(items: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items or ()}


def contains(actual: Any, expected: Any, key: str = "") -> bool:
    """expected is a subset of actual (the server adds defaults to containers and writes
    quantities in canonical form)."""
    if key in ("cpu", "memory") and isinstance(expected, str) and isinstance(actual, str):
        return parse_quantity(actual) == parse_quantity(expected)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v, k) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list) and expected and all(
            isinstance(item, dict) and "name" in item for item in expected):
        mine = by_name(actual)
        return all(contains(mine.get(item["name"]), item) for item in expected)
    return bool(actual == expected)


def assert_pod_matches_render(pod: dict[str, Any], template: dict[str, Any],
                              user: dict[str, str]) -> None:
    want = dict(template["metadata"]["annotations"])
    got = dict(pod["metadata"].get("annotations") or {})
    if user or pod["spec"]["terminationGracePeriodSeconds"] != 30:
        # the policy cannot hash in CEL: a pod with the user's own keys or its own grace
        # period (in the drain agent's command) gets its params entry's hash
        want.pop(HASH)
        got.pop(HASH)
    if user:
        # the user's own keys are never meshcfg's (render before issue 10 still listed them)
        assert not set(got.pop(MANAGED).split(",")) & set(user)
        want.pop(MANAGED)
    assert {k: v for k, v in got.items() if k not in user} == \
        {k: v for k, v in want.items() if k not in user}
    assert {k: got[k] for k in user} == user          # the user's own, untouched
    for key in ("initContainers", "containers", "volumes"):
        ours = [c for c in template["spec"].get(key) or () if c["name"] in ADDED]
        assert not ours or contains(pod["spec"].get(key), ours), (key, pod["spec"].get(key), ours)
        theirs = {c["name"] for c in pod["spec"].get(key) or () if c["name"] in ADDED}
        assert theirs == {c["name"] for c in ours}


@pytest.mark.parametrize("precedence", ["annotation-first", "workload-first"])
def test_admitted_pods_get_what_render_writes_and_deployments_stay_as_written(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, precedence: str) -> None:
    ns = injected_namespace(kube_cluster)
    try:
        kubectl_apply(kube_cluster, *configs(meshcfg.mesh_ns, ns, precedence))
        run = meshcfg("admission", "apply", "-n", ns, f"--istio-namespace={meshcfg.mesh_ns}",
                      "--force-conflicts")
        assert run.code == 0, run.err
        assert f"SidecarAdmission/{ns}/meshcfg serverside-applied" in run.out
        params = kube_cluster.get_json("sidecaradmissions", "meshcfg", "-n", ns)
        assert params["spec"]["precedence"] == precedence
        diff = meshcfg("admission", "diff", "-n", ns, f"--istio-namespace={meshcfg.mesh_ns}")
        assert diff.code == 0 and diff.out == "", diff.out
        wait_for_admission_policy(kube_cluster, ns)
        written = workloads(ns)
        kubectl_apply(kube_cluster, *written)
        for doc in written:
            name = doc["metadata"]["name"]
            template = rendered(meshcfg, ns, name)
            pod = pod_of(kube_cluster, ns, name)
            annotations = doc["spec"]["template"]["metadata"]["annotations"]
            user = dict(annotations)
            if name in ("merge", "optout", "shared"):
                # left alone: a user's own proxy.istio.io/config or resource annotation
                # (CEL cannot merge them), or no injection
                assert (pod["metadata"].get("annotations") or {}) == annotations
                assert not {c["name"] for c in pod["spec"].get("initContainers") or ()}
                assert [c["name"] for c in pod["spec"]["containers"]] == ["app"]
                continue
            assert_pod_matches_render(pod, template, user)
            live = kube_cluster.get_json("deployment", name, "-n", ns)
            assert live["spec"]["template"]["metadata"].get("annotations", {}) == annotations
            assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["app"]
        lint = meshcfg("lint", "-n", ns, "-o", "json")
        assert lint.code == 3, lint.err
        skipped = {item["target"]["name"]: [w["message"] for w in item["warnings"]
                                            if w["code"] == "AdmissionSkipsPod"]
                   for item in lint.json()["items"]}
        assert {name for name, found in skipped.items() if found} == {"merge", "shared"}
        assert "proxy.istio.io/config" in skipped["merge"][0]
        assert "sidecar.istio.io/proxyCPU" in skipped["shared"][0]
        own = pod_of(kube_cluster, ns, "own")["metadata"]["annotations"]
        assert own["sidecar.istio.io/logLevel"] == "debug"
        assert own["sidecar.istio.io/proxyCPULimit"] == "3"
        drained = pod_of(kube_cluster, ns, "drained")
        proxy = by_name(drained["spec"]["containers"])["istio-proxy"]
        assert "--grace-period=45s" in proxy["lifecycle"]["preStop"]["exec"]["command"]
    finally:
        kube_cluster.delete_namespace(ns)


def test_a_cel_error_never_rejects_a_pod(meshcfg: Meshcfg, kube_cluster: KubeCluster) -> None:
    ns = injected_namespace(kube_cluster)
    try:
        assert meshcfg("admission", "apply", "--static-only", "--force-conflicts").code == 0
        broken = {"apiVersion": f"{admission.GROUP}/{admission.VERSION}",
                  "kind": admission.PARAMS_KIND,
                  "metadata": {"name": admission.PARAMS_NAME, "namespace": ns},
                  # a key listed but missing from the map: indexing it is a CEL runtime error
                  "spec": {"entries": [{"annotations": {}, "configHash": "x",
                                        "annotationKeys": ["sidecar.istio.io/logLevel"]}]}}
        kube_cluster.wait_crd_established(f"{admission.PARAMS_PLURAL}.{admission.GROUP}")
        kubectl_apply(kube_cluster, broken)
        kubectl_apply(kube_cluster, deployment("app", ns, {"app": "app"}, replicas=1))
        pod = pod_of(kube_cluster, ns, "app")
        assert not (pod["metadata"].get("annotations") or {})
        # a broken patch (a path that does not exist) is ignored too
        broken["spec"]["entries"] = [{"annotations": {}, "configHash": "x", "annotationKeys": [],
                                      "graceArgIndex": 3}]
        kubectl_apply(kube_cluster, broken)
        kubectl_apply(kube_cluster, deployment("app2", ns, {"app": "app2"}, replicas=1))
        pod = pod_of(kube_cluster, ns, "app2")
        assert HASH not in (pod["metadata"].get("annotations") or {})
    finally:
        kube_cluster.delete_namespace(ns)


def test_render_prints_static_objects_first_then_one_params_per_namespace(
        meshcfg: Meshcfg, kube_cluster: KubeCluster) -> None:
    ns = injected_namespace(kube_cluster)
    try:
        run = meshcfg("admission", "render", "-n", ns, f"--istio-namespace={meshcfg.mesh_ns}")
        assert run.code == 0, run.err
        docs = list(yaml.safe_load_all(run.out))
        assert [d["kind"] for d in docs] == [
            "CustomResourceDefinition", "MutatingAdmissionPolicy",
            *["MutatingAdmissionPolicyBinding"] * 3, "SidecarAdmission"]
        assert docs[-1]["metadata"] == {"name": "meshcfg", "namespace": ns}
        assert docs[1]["spec"]["failurePolicy"] == "Ignore"
    finally:
        kube_cluster.delete_namespace(ns)


def test_diff_shows_a_config_change_and_dry_runs_write_nothing(
        meshcfg: Meshcfg, kube_cluster: KubeCluster) -> None:
    ns = injected_namespace(kube_cluster)
    mesh = f"--istio-namespace={meshcfg.mesh_ns}"
    try:
        kubectl_apply(kube_cluster, spc("ns", ns, {"proxy": {"logLevel": "info"}}))
        assert meshcfg("admission", "apply", "-n", ns, mesh, "--force-conflicts").code == 0
        kubectl_apply(kube_cluster, spc("ns", ns, {"proxy": {"logLevel": "debug"}}))
        diff = meshcfg("admission", "diff", "-n", ns, mesh)
        assert diff.code == 3, diff.err
        assert f"--- live/SidecarAdmission/{ns}/meshcfg" in diff.out
        assert "-      sidecar.istio.io/logLevel: info" in diff.out
        assert "+      sidecar.istio.io/logLevel: debug" in diff.out
        for mode in ("client", "server"):
            dry = meshcfg("admission", "apply", "-n", ns, mesh, f"--dry-run={mode}")
            assert dry.code == 0, dry.err
            assert f"SidecarAdmission/{ns}/meshcfg serverside-applied ({mode} dry run)" in dry.out
        params = kube_cluster.get_json("sidecaradmissions", "meshcfg", "-n", ns)
        assert params["spec"]["entries"][-1]["annotations"]["sidecar.istio.io/logLevel"] == "info"
        assert meshcfg("admission", "apply", "-n", ns, mesh).code == 0
        assert meshcfg("admission", "diff", "-n", ns, mesh).code == 0
    finally:
        kube_cluster.delete_namespace(ns)
