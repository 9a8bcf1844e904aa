"""`kubectl meshcfg sync` against the real API server: it server-side applies the rendered
config to exactly the workloads whose config differs, keeps users' own annotations, and
refuses to take fields another field manager owns unless --force-conflicts."""

from __future__ import annotations

from typing import Any

import pytest
from clusterlib import KubeCluster

from kubectl_meshcfg.app.sync import SYNC_FIELD_MANAGER

from .livelib import Meshcfg, deployment, kubectl_apply, spc

pytestmark = pytest.mark.cluster


def template_annotations(cluster: KubeCluster, ns: str, name: str) -> dict[str, str]:
    obj = cluster.get_json("deployment", name, "-n", ns)
    return dict(obj["spec"]["template"]["metadata"].get("annotations") or {})


def owners(cluster: KubeCluster, ns: str, name: str) -> dict[str, set[str]]:
    """Annotation key -> the field managers that own it."""
    obj = cluster.get_json("deployment", name, "-n", ns, "--show-managed-fields")
    found: dict[str, set[str]] = {}
    for entry in obj["metadata"]["managedFields"]:
        template = (entry.get("fieldsV1") or {}).get("f:spec", {}).get("f:template", {})
        for key in template.get("f:metadata", {}).get("f:annotations", {}):
            found.setdefault(key.removeprefix("f:"), set()).add(entry["manager"])
    return found


def sync(meshcfg: Meshcfg, ns: str, *args: str) -> Any:
    return meshcfg("sync", "-n", ns, f"--istio-namespace={meshcfg.mesh_ns}", *args)


def test_sync_changes_exactly_the_workloads_whose_config_differs(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str) -> None:
    ns = test_namespace
    kubectl_apply(kube_cluster,
                  deployment("fast", ns, {"app": "fast", "performance": "sensitive"}),
                  deployment("plain", ns, {"app": "plain"},
                             annotations={"team": "payments", "prometheus.io/scrape": "true"}))
    first = sync(meshcfg, ns)
    assert first.code == 0, first.err
    assert f"deployment.apps/fast ({ns}) synced" in first.out
    assert f"deployment.apps/plain ({ns}) synced" in first.out
    assert first.out.rstrip().endswith("2 synced, 0 unchanged, 0 failed, 0 skipped")
    plain = template_annotations(kube_cluster, ns, "plain")
    assert plain["team"] == "payments" and plain["prometheus.io/scrape"] == "true"
    assert plain["sidecar.istio.io/proxyCPU"] == "100m"
    assert "meshcfg.io/config-hash" in plain
    # a second run finds nothing to do
    again = sync(meshcfg, ns)
    assert again.out.rstrip().endswith("0 synced, 2 unchanged, 0 failed, 0 skipped")
    # a workload-scoped config changes only the workload it selects
    kubectl_apply(kube_cluster, spc("perf", ns, {"selector": {"matchLabels": {"performance": "sensitive"}},
                                                 "proxy": {"concurrency": 5,
                                                           "resources": {"limits": {"cpu": "5"}}}}))
    before_plain = template_annotations(kube_cluster, ns, "plain")
    third = sync(meshcfg, ns)
    assert third.code == 0, third.err
    assert f"deployment.apps/fast ({ns}) synced" in third.out
    assert "sidecar.istio.io/proxyCPULimit: 2000m -> 5" in third.out
    assert "plain" not in third.out
    assert template_annotations(kube_cluster, ns, "plain") == before_plain
    fast = template_annotations(kube_cluster, ns, "fast")
    assert "concurrency: 5" in fast["proxy.istio.io/config"]
    # managedFields: meshcfg's sync manager owns what it wrote, the user keeps their own key
    ownership = owners(kube_cluster, ns, "plain")
    assert ownership["sidecar.istio.io/proxyCPU"] == {SYNC_FIELD_MANAGER}
    assert ownership["meshcfg.io/config-hash"] == {SYNC_FIELD_MANAGER}
    assert SYNC_FIELD_MANAGER not in ownership["team"]


def test_dry_runs_change_nothing(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                 test_namespace: str) -> None:
    kubectl_apply(kube_cluster, deployment("web", test_namespace, {"app": "web"}))
    before = kube_cluster.get_json("deployment", "web", "-n", test_namespace)
    for mode in ("client", "server"):
        run = sync(meshcfg, test_namespace, f"--dry-run={mode}")
        assert run.code == 0, run.err
        assert f"synced ({mode} dry run)" in run.out
    after = kube_cluster.get_json("deployment", "web", "-n", test_namespace)
    # the deployment controller may write status meanwhile; a write by sync would show here
    assert what_sync_could_write(after) == what_sync_could_write(before)


def what_sync_could_write(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    return {"generation": meta["generation"], "spec": deployment["spec"],
            "annotations": meta.get("annotations"), "labels": meta.get("labels"),
            "managers": [m for m in meta.get("managedFields", []) if m.get("subresource") != "status"]}


def test_a_users_annotation_is_never_taken_even_when_a_workload_config_wins(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str) -> None:
    """SPEC section 2: render and sync never list, overwrite or remove a user's key. Where a
    workload object beats it (workload-first), sync says it cannot deliver that value."""
    ns = test_namespace
    kubectl_apply(kube_cluster, spc("mesh-wide", meshcfg.mesh_ns, {"precedence": "workload-first"}),
                  spc("quiet", ns, {"selector": {"matchLabels": {"app": "owned"}},
                                    "proxy": {"logLevel": "error"}}))
    # the team owns its own logLevel annotation, applied server-side with its own manager
    kubectl_apply(kube_cluster, deployment("owned", ns, {"app": "owned"},
                                           annotations={"sidecar.istio.io/logLevel": "debug"}),
                  server_side="true", field_manager="team-a")
    for args in ((), ("--force-conflicts",)):
        run = sync(meshcfg, ns, *args)
        assert run.code == 0, run.err
        assert (f"warning: deployment.apps/owned ({ns}): proxy.logLevel is not rendered: the "
                "object's own annotation sidecar.istio.io/logLevel") in run.err
        annotations = template_annotations(kube_cluster, ns, "owned")
        assert annotations["sidecar.istio.io/logLevel"] == "debug"
        assert "sidecar.istio.io/logLevel" not in annotations["meshcfg.io/managed-annotations"]
        assert owners(kube_cluster, ns, "owned")["sidecar.istio.io/logLevel"] == {"team-a"}


def test_restart_rolls_only_changed_workloads(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                              test_namespace: str) -> None:
    ns = test_namespace
    kubectl_apply(kube_cluster, deployment("a", ns, {"app": "a"}), deployment("b", ns, {"app": "b"}))
    assert sync(meshcfg, ns).code == 0
    kubectl_apply(kube_cluster, spc("only-a", ns, {"selector": {"matchLabels": {"app": "a"}},
                                                   "proxy": {"logLevel": "info"}}))
    run = sync(meshcfg, ns, "--restart")
    assert run.code == 0, run.err
    assert f"deployment.apps/a ({ns}) synced and restarted" in run.out
    assert "kubectl.kubernetes.io/restartedAt" in template_annotations(kube_cluster, ns, "a")
    assert "kubectl.kubernetes.io/restartedAt" not in template_annotations(kube_cluster, ns, "b")


def test_bare_pods_are_skipped_with_a_reason(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                             test_namespace: str) -> None:
    from .livelib import pod
    kubectl_apply(kube_cluster, pod("lonely", test_namespace))
    run = sync(meshcfg, test_namespace)
    assert run.code == 0
    assert f"pod/lonely ({test_namespace}) skipped: a bare pod's sidecar cannot change in place" in run.err


def generation(cluster: KubeCluster, ns: str, name: str) -> int:
    return int(cluster.get_json("deployment", name, "-n", ns)["metadata"]["generation"])


def test_users_keys_survive_syncs_and_a_second_sync_changes_nothing(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str) -> None:
    """A user key with the value meshcfg would write, with another value, a user
    proxy.istio.io/config, and a user edit after a sync: each followed by two syncs; the
    user's keys keep their values and owners, and the second sync changes (and rolls)
    nothing."""
    ns = test_namespace
    cpu, config, level = ("sidecar.istio.io/proxyCPU", "proxy.istio.io/config",
                          "sidecar.istio.io/logLevel")
    kubectl_apply(kube_cluster,
                  deployment("same", ns, {"app": "same"}, annotations={cpu: "100m"}),
                  deployment("other", ns, {"app": "other"}, annotations={cpu: "300m"}),
                  deployment("conf", ns, {"app": "conf"}, annotations={config: "concurrency: 3\n"}),
                  deployment("edit", ns, {"app": "edit"}))
    users = {"same": {cpu: "100m"}, "other": {cpu: "300m"}, "conf": {config: "concurrency: 3\n"}}

    def check_users() -> None:
        for name, keys in users.items():
            annotations = template_annotations(kube_cluster, ns, name)
            listed = annotations["meshcfg.io/managed-annotations"].split(",")
            for key, value in keys.items():
                assert annotations[key] == value, (name, key)
                assert key not in listed, (name, key)
                assert SYNC_FIELD_MANAGER not in owners(kube_cluster, ns, name)[key], (name, key)

    assert sync(meshcfg, ns).code == 0
    check_users()
    kube_cluster.kubectl("patch", "deployment", "edit", "-n", ns, "--type=merge", "-p",
                         '{"spec":{"template":{"metadata":{"annotations":'
                         f'{{"{level}":"debug"}}}}}}}}}}')
    users["edit"] = {level: "debug"}
    first = sync(meshcfg, ns)
    assert first.code == 0, first.err
    check_users()
    before = {name: generation(kube_cluster, ns, name) for name in users}
    second = sync(meshcfg, ns)
    assert second.code == 0, second.err
    assert second.out.rstrip().endswith("0 synced, 4 unchanged, 0 failed, 0 skipped"), second.out
    assert {name: generation(kube_cluster, ns, name) for name in users} == before
    check_users()
    explained = meshcfg("explain", "deployment/other", "-n", ns, "-o", "json")
    field = explained.json()["fields"]["proxy.resources.requests.cpu"]
    assert field["value"] == "300m"
    assert field["source"] == {"layer": "annotation", "annotation": cpu}
    conf = meshcfg("explain", "deployment/conf", "-n", ns, "-o", "json").json()["fields"]
    assert conf["proxy.concurrency"]["value"] == 3
