"""`get`, `explain`, `lint` and `diff` reading a real cluster: the mesh ConfigMap, configs of
every scope, pods and Deployments (whose pods the controller-manager creates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterlib import KubeCluster, poll

from .livelib import (
    Meshcfg,
    deployment,
    kubectl_apply,
    mesh_configmap,
    pod,
    spc,
    write,
)

pytestmark = pytest.mark.cluster


@pytest.fixture
def populated(meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,
              mesh_ns: str, tmp_path: Path) -> str:
    """A mesh config, a global, a namespace and two competing workload configs, two pods."""
    ns = test_namespace
    kubectl_apply(kube_cluster, mesh_configmap(mesh_ns, {"holdApplicationUntilProxyStarts": True}),
                  pod("web-0", ns, {"app": "web"}, {"sidecar.istio.io/logLevel": "debug"}),
                  pod("db-0", ns, {"app": "db"}, grace=5))
    first = write(tmp_path / "1.yaml",
                  spc("global", mesh_ns, {"proxy": {"logLevel": "info"}}),
                  spc("ns-defaults", ns, {"lifecycle": {"terminationDrainDuration": "10s"}},
                      labels={"team": "core"}),
                  spc("web-old", ns, {"selector": {"matchLabels": {"app": "web"}},
                                      "proxy": {"concurrency": 4}}))
    assert meshcfg("apply", "-f", str(first)).code == 0
    # Created in a later second: web-old stays the oldest and wins the workload layer.
    old = kube_cluster.get_json("spc", "web-old", "-n", ns)["metadata"]["creationTimestamp"]
    poll(lambda: _now(kube_cluster, ns) > old, timeout=10, what="the clock to tick")
    second = write(tmp_path / "2.yaml",
                   spc("web-new", ns, {"selector": {"matchLabels": {"app": "web"}},
                                       "proxy": {"concurrency": 1}}))
    assert meshcfg("apply", "-f", str(second)).code == 0
    return ns


def _now(cluster: KubeCluster, ns: str) -> str:
    """The API server's clock, as a creationTimestamp."""
    name = "clock"
    cluster.kubectl("create", "configmap", name, "-n", ns, check=False)
    stamp = str(cluster.get_json("configmap", name, "-n", ns)["metadata"]["creationTimestamp"])
    cluster.kubectl("delete", "configmap", name, "-n", ns)
    return stamp


def test_get_table(meshcfg: Meshcfg, populated: str) -> None:
    run = meshcfg("get", "-n", populated)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == ["NAME", "SCOPE", "SELECTOR", "FIELDS", "PODS", "CONFLICTS", "AGE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["ns-defaults"][1:6] == ["namespace", "<none>", "1", "2", "<none>"]
    assert rows["web-old"][1:6] == ["workload", "app=web", "1", "1",
                                    f"{populated}/web-new"]
    assert rows["web-new"][5] == f"{populated}/web-old"
    assert rows["web-old"][6].endswith("s")
    assert run.err == ""


def test_get_wide_name_json_yaml(meshcfg: Meshcfg, populated: str) -> None:
    wide = meshcfg("get", "-n", populated, "-o", "wide")
    assert "PRECEDENCE" in wide.out.splitlines()[0]
    assert "lifecycle.terminationDrainDuration" in wide.out
    name = meshcfg("get", "-n", populated, "-o", "name")
    assert name.out.splitlines() == [f"sidecarproxyconfig.meshcfg.io/{n}"
                                     for n in ("ns-defaults", "web-new", "web-old")]
    as_json = meshcfg("get", "-n", populated, "-o", "json").json()
    assert as_json["kind"] == "List"
    assert [i["metadata"]["name"] for i in as_json["items"]] == ["ns-defaults", "web-new",
                                                                 "web-old"]
    one = meshcfg("get", "web-old", "-n", populated, "-o", "yaml")
    doc = yaml.safe_load(one.out)
    assert doc["kind"] == "SidecarProxyConfig"
    assert doc["spec"]["proxy"]["concurrency"] == 4
    assert doc["metadata"]["creationTimestamp"]


def test_get_label_selector_and_all_namespaces(meshcfg: Meshcfg, populated: str,
                                               mesh_ns: str) -> None:
    selected = meshcfg("get", "-n", populated, "-l", "team=core", "-o", "name")
    assert selected.out == "sidecarproxyconfig.meshcfg.io/ns-defaults\n"
    everywhere = meshcfg("get", "-A")
    assert everywhere.out.splitlines()[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:3] == [mesh_ns, "global", "global"]
               for line in everywhere.out.splitlines())


def test_get_root_namespace_counts_pods_everywhere(meshcfg: Meshcfg, populated: str,
                                                   mesh_ns: str) -> None:
    run = meshcfg("get", "-n", mesh_ns)
    assert run.code == 0, run.err
    [row] = [line.split() for line in run.out.splitlines()[1:]]
    assert row[:3] == ["global", "global", "<none>"]
    assert int(row[4]) >= 2          # web-0 and db-0 of the other namespace, at least


def test_get_missing_name(meshcfg: Meshcfg, populated: str) -> None:
    run = meshcfg("get", "nope", "-n", populated)
    assert run.code == 1
    assert run.out == ""
    assert run.err == 'error: sidecarproxyconfigs.meshcfg.io "nope" not found\n'


def test_explain_pod_json(meshcfg: Meshcfg, populated: str, mesh_ns: str) -> None:
    run = meshcfg("explain", "pod/web-0", "-n", populated, "-o", "json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["target"] == {"kind": "Pod", "namespace": populated, "name": "web-0"}
    fields = doc["fields"]
    assert fields["proxy.concurrency"]["value"] == 4
    assert fields["proxy.concurrency"]["source"] == {
        "layer": "workload", "kind": "SidecarProxyConfig", "namespace": populated,
        "name": "web-old"}
    assert fields["proxy.logLevel"]["value"] == "debug"
    assert fields["proxy.logLevel"]["source"] == {"layer": "annotation",
                                                  "annotation": "sidecar.istio.io/logLevel"}
    assert fields["proxy.logLevel"]["overridden"][0]["source"]["name"] == "global"
    assert fields["lifecycle.holdApplicationUntilProxyStarts"]["source"] == {
        "layer": "mesh", "kind": "ConfigMap", "namespace": mesh_ns, "name": "istio"}
    assert fields["lifecycle.terminationDrainDuration"]["source"]["layer"] == "namespace"
    codes = [w["code"] for w in doc["warnings"]]
    assert "WorkloadConflict" in codes


def test_explain_text_and_all_targets(meshcfg: Meshcfg, populated: str) -> None:
    text = meshcfg("explain", "pod", "db-0", "-n", populated)
    assert text.code == 0
    assert text.out.startswith(f"Pod: db-0.{populated}\n")
    assert "DrainExceedsGracePeriod" in text.out
    every = meshcfg("explain", "-n", populated, "-o", "json").json()
    assert sorted(i["target"]["name"] for i in every["items"]) == ["db-0", "web-0"]
    everywhere = meshcfg("explain", "-A", "-o", "json")
    assert everywhere.code == 0, everywhere.err
    found = {(i["target"]["namespace"], i["target"]["name"]): i
             for i in everywhere.json()["items"]}
    assert found[(populated, "web-0")]["fields"]["proxy.concurrency"]["value"] == 4
    assert (populated, "db-0") in found


def test_explain_missing_target(meshcfg: Meshcfg, populated: str) -> None:
    run = meshcfg("explain", "pod/nope", "-n", populated)
    assert run.code == 1
    assert run.out == ""
    assert run.err == f"error: pod/nope not found in namespace {populated}\n"


def test_lint_live(meshcfg: Meshcfg, populated: str) -> None:
    run = meshcfg("lint", "-n", populated)
    assert run.code == 3
    assert "pod/web-0" in run.out and "WorkloadConflict" in run.out
    assert "pod/db-0" in run.out and "DrainExceedsGracePeriod" in run.out
    assert run.err == ""


def test_deployment_pods_fold_into_it(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                      test_namespace: str, tmp_path: Path) -> None:
    ns = test_namespace
    kubectl_apply(kube_cluster, deployment("api", ns, {"app": "api"}, replicas=2,
                                           annotations={"sidecar.istio.io/proxyCPU": "300m"}))
    poll(lambda: len(kube_cluster.get_json("pods", "-n", ns, "-l", "app=api")["items"]) == 2,
         timeout=60, what="the Deployment's pods")
    path = write(tmp_path / "c.yaml", spc("api", ns, {"selector": {"matchLabels": {"app": "api"}},
                                                      "proxy": {"concurrency": 2}}))
    assert meshcfg("apply", "-f", str(path)).code == 0

    every = meshcfg("explain", "-n", ns, "-o", "json")
    assert every.code == 0, every.err
    assert [(i["target"]["kind"], i["target"]["name"]) for i in every.json()["items"]] == [
        ("Deployment", "api")]
    one = meshcfg("explain", "deploy/api", "-n", ns, "-o", "json").json()
    assert one["target"]["kind"] == "Deployment"
    assert one["fields"]["proxy.resources.requests.cpu"]["value"] == "300m"
    assert one["fields"]["proxy.concurrency"]["source"]["name"] == "api"
    pods = meshcfg("explain", "pods", "-n", ns, "-o", "json").json()["items"]
    assert len(pods) == 2
    assert {p["fields"]["proxy.concurrency"]["value"] for p in pods} == {2}
    selected = meshcfg("explain", "-n", ns, "-l", "app=api", "-o", "json").json()
    assert len(selected["items"]) == 1
    got = meshcfg("get", "api", "-n", ns)
    assert got.out.splitlines()[1].split()[4] == "2"      # matched pods


def test_diff_live(meshcfg: Meshcfg, populated: str, tmp_path: Path) -> None:
    ns = populated
    same = write(tmp_path / "same.yaml",
                 spc("web-old", ns, {"selector": {"matchLabels": {"app": "web"}},
                                     "proxy": {"concurrency": 4}}))
    unchanged = meshcfg("diff", "-f", str(same))
    assert unchanged.code == 0, unchanged.err
    assert unchanged.out.startswith("No changes")

    change = write(tmp_path / "change.yaml",
                   spc("web-old", ns, {"selector": {"matchLabels": {"app": "web"}},
                                       "proxy": {"concurrency": 8}}))
    run = meshcfg("diff", "-f", str(change), "-o", "json")
    assert run.code == 3, run.err
    doc = run.json()
    assert doc["kind"] == "SidecarConfigDiff"
    [item] = doc["items"]
    assert item["target"] == {"kind": "Pod", "namespace": ns, "name": "web-0"}
    [field] = item["fields"]
    assert field["field"] == "proxy.concurrency"
    assert field["before"]["value"] == 4 and field["after"]["value"] == 8
    assert field["after"]["source"]["name"] == "web-old"
    text = meshcfg("diff", "-f", str(change))
    assert text.code == 3
    assert f"pod/web-0 (namespace {ns}): 1 field change" in text.out
    assert "4 (workload" in text.out and "8 (workload" in text.out


def test_diff_live_global_change_reaches_every_namespace(
        meshcfg: Meshcfg, populated: str, mesh_ns: str, tmp_path: Path) -> None:
    change = write(tmp_path / "g.yaml", spc("global", mesh_ns, {"proxy": {"logLevel": "error"}}))
    run = meshcfg("diff", "-f", str(change), "-o", "json")
    assert run.code == 3, run.err
    changed = {(i["target"]["namespace"], i["target"]["name"]) for i in run.json()["items"]}
    # web-0 sets logLevel by annotation: unchanged. db-0 follows the global object.
    assert (populated, "db-0") in changed
    assert (populated, "web-0") not in changed


def test_diff_new_object_that_loses_a_conflict(meshcfg: Meshcfg, populated: str,
                                               tmp_path: Path) -> None:
    change = write(tmp_path / "n.yaml",
                   spc("web-newest", populated, {"selector": {"matchLabels": {"app": "web"}},
                                                 "proxy": {"concurrency": 9}}))
    run = meshcfg("diff", "-f", str(change), "-o", "json")
    assert run.code == 3
    [item] = run.json()["items"]
    assert item["fields"] == []
    assert item["warnings"]["added"][0]["code"] == "WorkloadConflict"


def test_diff_local_needs_no_cluster(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", pod("p", "x", {"app": "p"}),
                 spc("cfg", "x", {"proxy": {"concurrency": 2}}))
    change = write(tmp_path / "change.yaml", spc("cfg", "x", {"proxy": {"concurrency": 3}}))
    from click.testing import CliRunner

    from kubectl_meshcfg.cli import cli

    result = CliRunner().invoke(cli, ["diff", "--local", "--base", str(base), "-f", str(change),
                                      "-o", "json"],
                                env={"KUBECONFIG": str(tmp_path / "none")})
    assert result.exit_code == 3, result.stderr
    [item] = json.loads(result.stdout)["items"]
    assert item["fields"][0]["before"]["value"] == 2
    assert item["fields"][0]["after"]["value"] == 3


@pytest.mark.parametrize(("name", "data", "warning"), [
    ("istio", {"mesh": "defaultConfig: [not, a, map"},
     "ignoring the mesh config: cluster: ConfigMap {ns}/istio: data.mesh: invalid YAML"),
    ("istio-sidecar-injector", {"values": "{not json", "config": "policy: enabled\n"},
     "ignoring the injector values: cluster: ConfigMap {ns}/istio-sidecar-injector: "
     "data.values: invalid JSON"),
], ids=["mesh-config", "injector-values"])
def test_broken_istio_configmap_is_reported_not_fatal(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str, mesh_ns: str,
        name: str, data: dict[str, str], warning: str) -> None:
    broken = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": name, "namespace": mesh_ns}, "data": data}
    kubectl_apply(kube_cluster, broken, pod("p", test_namespace))
    run = meshcfg("explain", "pod/p", "-n", test_namespace, "-o", "json")
    assert run.code == 0
    assert run.err.startswith("warning: " + warning.format(ns=mesh_ns))
    assert run.err.count("\n") == 1
    fields = run.json()["fields"]
    assert {f["source"]["layer"] for f in fields.values()} == {"default"}
    assert fields["proxy.resources.requests.memory"]["source"] == {"layer": "default"}


def test_defaults_come_from_the_installed_injector_values(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str, mesh_ns: str) -> None:
    """Live, the default layer is ConfigMap istio-sidecar-injector's `values` in the Istio
    namespace (the demo profile's 10m/40Mi here), for istio-proxy and istio-init alike."""
    values = {"global": {"proxy": {"resources": {"requests": {"cpu": "10m", "memory": "40Mi"},
                                                 "limits": {"cpu": "1", "memory": "1Gi"}}}}}
    kubectl_apply(kube_cluster, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-sidecar-injector", "namespace": mesh_ns},
        "data": {"values": json.dumps(values), "config": "policy: enabled\n"}},
        pod("plain-0", test_namespace, {"app": "plain"}))
    run = meshcfg("explain", "pod/plain-0", "-n", test_namespace, "-o", "json")
    assert run.code == 0, run.err
    fields = run.json()["fields"]
    source = {"layer": "default", "kind": "ConfigMap", "namespace": mesh_ns,
              "name": "istio-sidecar-injector"}
    for container in ("proxy", "init"):
        assert fields[f"{container}.resources.requests.memory"] == {
            "value": "40Mi", "source": source, "overridden": []}
    assert fields["proxy.concurrency"] == {"value": 1, "source": {"layer": "default"},
                                           "overridden": []}


def test_the_bundled_examples_mean_the_same_live_and_offline(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, tmp_path: Path) -> None:
    """`kubectl apply -f examples/` (namespaces renamed to fresh ones: the cluster is
    shared) and `--local -f` on the same documents give the same explain output; the
    examples apply in one go, so nothing may depend on two objects created in one second."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    docs = [d for path in sorted(examples.glob("*.yaml"))
            for d in yaml.safe_load_all(path.read_text()) if d]
    names = sorted({d["metadata"].get("namespace") or d["metadata"]["name"] for d in docs
                    if d["kind"] == "Namespace" or "namespace" in d["metadata"]})
    renamed = {name: kube_cluster.create_namespace(name[:12]) for name in names}
    try:
        moved = [dict(d, metadata={**d["metadata"], "namespace": renamed[d["metadata"]["namespace"]]})
                 for d in docs if d["kind"] != "Namespace"]
        for doc in moved:   # the mesh config names its root namespace
            if doc["kind"] == "ConfigMap" and "mesh" in doc.get("data", {}):
                doc["data"] = {"mesh": doc["data"]["mesh"].replace(
                    "rootNamespace: istio-system", f"rootNamespace: {renamed['istio-system']}")}
        manifest = write(tmp_path / "examples.yaml", *moved)
        kube_cluster.kubectl("apply", "-f", str(manifest))
        mesh = f"--istio-namespace={renamed['istio-system']}"
        for name in names:
            ns = renamed[name]
            live = meshcfg("explain", "-n", ns, mesh, "-o", "json", mesh=False)
            local = meshcfg("explain", "-n", ns, mesh, "-o", "json", "--local", "-f",
                            str(manifest), mesh=False)
            assert (live.code, local.code) == (0, 0), live.err + local.err
            assert live.json() == local.json(), name
    finally:
        for ns in renamed.values():
            kube_cluster.delete_namespace(ns)


def _observed(before: dict[str, Any], after: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(target, field, "before -> after") for every leaf whose value or source changed."""
    def by_target(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        items = doc["items"] if doc.get("kind") == "List" else [doc]
        return {i["target"]["name"]: i["fields"] for i in items}

    old, new = by_target(before), by_target(after)
    found = set()
    for name in old:
        for leaf in set(old[name]) | set(new[name]):
            a, b = old[name].get(leaf), new[name].get(leaf)
            a, b = (None if f is None else (f["value"], f["source"]) for f in (a, b))
            if a != b:
                found.add((name, leaf, f"{a} -> {b}"))
    return found


def _predicted(diff: dict[str, Any]) -> set[tuple[str, str, str]]:
    def side(entry: dict[str, Any] | None) -> Any:
        return None if entry is None else (entry["value"], entry["source"])

    return {(item["target"]["name"], f["field"], f"{side(f['before'])} -> {side(f['after'])}")
            for item in diff["items"] for f in item["fields"]}


@pytest.mark.parametrize("owner", [("--server-side=false",), ("--server-side",
                                                               "--field-manager=team-a")])
def test_diff_predicts_apply_when_another_manager_owns_fields(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str, tmp_path: Path,
        owner: tuple[str, ...]) -> None:
    """Fields another manager (client-side apply, or another server-side apply manager)
    owns stay when meshcfg apply leaves them out: diff says so before the apply, and
    nothing after it."""
    ns = test_namespace
    resources = {"requests": {"cpu": "500m", "memory": "256Mi"},
                 "limits": {"cpu": "2", "memory": "1Gi"}}
    base = write(tmp_path / "base.yaml",
                 spc("team", ns, {"proxy": {"resources": resources, "concurrency": 2}}),
                 pod("app-0", ns, {"app": "app"}))
    kube_cluster.kubectl("apply", *owner, "-f", str(base))
    change = write(tmp_path / "change.yaml",
                   spc("team", ns, {"proxy": {"concurrency": 2, "logLevel": "debug"}}))
    explain = ("explain", "pod/app-0", "-n", ns, "-o", "json")
    before = meshcfg(*explain).json()
    predicted = meshcfg("diff", "-f", str(change), "-o", "json")
    assert predicted.code == 3, predicted.err
    assert meshcfg("apply", "-f", str(change)).code == 0
    after = meshcfg(*explain).json()
    assert after["fields"]["proxy.resources.limits.cpu"]["value"] == "2"   # kept
    assert _predicted(predicted.json()) == _observed(before, after)
    assert {leaf for _, leaf, _ in _observed(before, after)} == {"proxy.logLevel"}
    again = meshcfg("diff", "-f", str(change))
    assert again.code == 0, again.out + again.err
    assert again.out.startswith("No changes")


def test_an_injected_pods_revision_reads_that_revisions_configmaps(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str, mesh_ns: str) -> None:
    """A pod the canary revision injected (annotation istio.io/rev) resolves against
    istio-sidecar-injector-canary and istio-canary; a plain pod against the default ones."""
    def values(cpu: str) -> str:
        return json.dumps({"global": {"proxy": {"resources": {"requests": {"cpu": cpu}}}}})

    kubectl_apply(kube_cluster,
                  {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "istio-sidecar-injector-canary", "namespace": mesh_ns},
                   "data": {"values": values("300m")}},
                  {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "istio-canary", "namespace": mesh_ns},
                   "data": {"mesh": yaml.safe_dump({"defaultConfig": {
                       "terminationDrainDuration": "9s"}})}},
                  pod("canary-0", test_namespace, {"app": "c"}, {"istio.io/rev": "canary"}),
                  pod("plain-0", test_namespace, {"app": "p"}))
    items = {i["target"]["name"]: i["fields"] for i in
             meshcfg("explain", "-n", test_namespace, "-o", "json").json()["items"]}
    canary = items["canary-0"]
    assert canary["proxy.resources.requests.cpu"]["value"] == "300m"
    assert canary["proxy.resources.requests.cpu"]["source"]["name"] == \
        "istio-sidecar-injector-canary"
    assert canary["lifecycle.terminationDrainDuration"]["value"] == "9s"
    assert items["plain-0"]["proxy.resources.requests.cpu"]["value"] == "100m"
