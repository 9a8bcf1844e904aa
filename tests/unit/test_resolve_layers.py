"""Each layer, both precedence modes, oldest-wins conflicts and the root namespace rule."""

from __future__ import annotations

import pytest
from builders import ROOT, codes, config, layer, mesh, pod, resolve, value

from kubectl_meshcfg.core import fields

WORKLOAD = {"selector": {"matchLabels": {"performance": "sensitive"}}}
SENSITIVE = {"performance": "sensitive"}


def test_defaults_are_istios_builtin_values_for_every_leaf_with_a_default() -> None:
    result = resolve([], pod())
    expected = {leaf.path: leaf.default for leaf in fields.LEAVES if leaf.default is not None}
    expected["proxy.concurrency"] = 2          # unset: pilot-agent runs ceil(2000m) workers
    assert {k: f["value"] for k, f in result["fields"].items()} == expected
    assert value(result, "init.resources.requests.cpu") == "100m"   # global.proxy.resources
    assert value(result, "proxy.resources.requests.cpu") == "100m"
    assert value(result, "init.resources.limits.memory") == "1024Mi"
    assert value(result, "lifecycle.terminationDrainDuration") == "5s"
    assert all(f["source"] == {"layer": "default"} and f["overridden"] == []
               for f in result["fields"].values())


def test_mesh_default_config_overrides_defaults_and_names_the_configmap() -> None:
    result = resolve([], pod(), mesh({"concurrency": 4, "terminationDrainDuration": "20s",
                                      "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}))
    field = result["fields"]["proxy.concurrency"]
    assert field == {"value": 4,
                     "source": {"layer": "mesh", "kind": "ConfigMap", "namespace": ROOT,
                                "name": "istio"},
                     "overridden": [{"value": 2, "source": {"layer": "default"}}]}
    assert value(result, "proxy.dnsCapture") is True
    assert value(result, "lifecycle.terminationDrainDuration") == "20s"


def test_each_config_layer_overrides_the_one_below_and_lists_them_highest_first() -> None:
    configs = [
        config(ROOT, "global", {"proxy": {"concurrency": 3}}),
        config("ai", "ns", {"proxy": {"concurrency": 4}}),
        config("ai", "wl", {**WORKLOAD, "proxy": {"concurrency": 5}}),
    ]
    result = resolve(configs, pod(labels=SENSITIVE), mesh({"concurrency": 1}))
    field = result["fields"]["proxy.concurrency"]
    assert field["value"] == 5
    assert field["source"] == {"layer": "workload", "kind": "SidecarProxyConfig",
                               "namespace": "ai", "name": "wl"}
    assert [(e["value"], e["source"]["layer"]) for e in field["overridden"]] == [
        (4, "namespace"), (3, "global"), (1, "mesh"), (2, "default")]


def test_annotation_first_puts_the_pod_annotation_on_top() -> None:
    configs = [config("ai", "wl", {**WORKLOAD, "proxy": {"logLevel": "info"}})]
    target = pod(labels=SENSITIVE, annotations={"sidecar.istio.io/logLevel": "debug"})
    result = resolve(configs, target)
    assert result["precedence"] == "annotation-first"
    assert value(result, "proxy.logLevel") == "debug"
    assert result["fields"]["proxy.logLevel"]["source"] == {
        "layer": "annotation", "annotation": "sidecar.istio.io/logLevel"}
    assert [e["source"]["layer"] for e in result["fields"]["proxy.logLevel"]["overridden"]] == [
        "workload", "default"]


def test_workload_first_puts_the_workload_object_above_the_annotation() -> None:
    configs = [config("ai", "wl", {**WORKLOAD, "proxy": {"logLevel": "info"}}),
               config("ai", "ns", {"proxy": {"logLevel": "error"}})]
    target = pod(labels=SENSITIVE, annotations={"sidecar.istio.io/logLevel": "debug",
                                                "sidecar.istio.io/componentLogLevel": "misc:info"})
    result = resolve(configs, target, precedence="workload-first")
    assert value(result, "proxy.logLevel") == "info"
    assert [(e["value"], e["source"]["layer"]) for e in result["fields"]["proxy.logLevel"]["overridden"]] == [
        ("debug", "annotation"), ("error", "namespace"), ("warning", "default")]
    # where the workload object is silent, the annotation still beats the namespace
    assert layer(result, "proxy.componentLogLevel") == "annotation"


def test_precedence_comes_from_the_winning_global_object_unless_overridden() -> None:
    configs = [config(ROOT, "mesh-wide", {"precedence": "workload-first"}),
               config("ai", "wl", {**WORKLOAD, "proxy": {"concurrency": 5}})]
    target = pod(labels=SENSITIVE, annotations={"proxy.istio.io/config": "concurrency: 1"})
    assert resolve(configs, target)["precedence"] == "workload-first"
    assert value(resolve(configs, target), "proxy.concurrency") == 5
    flipped = resolve(configs, target, precedence="annotation-first")
    assert flipped["precedence"] == "annotation-first"
    assert value(flipped, "proxy.concurrency") == 1


def test_spec_precedence_is_only_read_on_the_global_object() -> None:
    configs = [config("ai", "ns", {"precedence": "workload-first"}),
               config("ai", "wl", {**WORKLOAD, "proxy": {"concurrency": 5}})]
    target = pod(labels=SENSITIVE, annotations={"proxy.istio.io/config": "concurrency: 1"})
    assert resolve(configs, target)["precedence"] == "annotation-first"
    assert value(resolve(configs, target), "proxy.concurrency") == 1


@pytest.mark.parametrize("scope_spec,code,layer_name", [
    ({}, "NamespaceConflict", "namespace"),
    (WORKLOAD, "WorkloadConflict", "workload"),
])
def test_oldest_object_wins_a_layer_whole_and_the_others_are_reported(
        scope_spec: dict[str, object], code: str, layer_name: str) -> None:
    older = config("ai", "zz-older", {**scope_spec, "proxy": {"concurrency": 4}},
                   created="2026-01-01T00:00:00Z")
    newer = config("ai", "aa-newer", {**scope_spec, "proxy": {"concurrency": 8, "logLevel": "debug"}},
                   created="2026-02-01T00:00:00Z")
    result = resolve([newer, older], pod(labels=SENSITIVE))
    assert value(result, "proxy.concurrency") == 4
    assert value(result, "proxy.logLevel") == "warning"   # never merged from the loser
    assert result["fields"]["proxy.concurrency"]["source"]["name"] == "zz-older"
    warning = next(w for w in result["warnings"] if w["code"] == code)
    assert warning["objects"] == ["ai/zz-older", "ai/aa-newer"]
    assert layer_name in warning["message"]


def test_equal_timestamps_fall_back_to_the_name() -> None:
    same = "2026-01-01T00:00:00Z"
    result = resolve([config("ai", "b", {"proxy": {"concurrency": 2}}, created=same),
                      config("ai", "a", {"proxy": {"concurrency": 7}}, created=same)], pod())
    assert value(result, "proxy.concurrency") == 7


def test_offline_objects_without_timestamps_count_as_created_in_load_order() -> None:
    first = config("ai", "zeta", {"proxy": {"concurrency": 3}}, order=0)
    second = config("ai", "alpha", {"proxy": {"concurrency": 9}}, order=1)
    existing = config("ai", "existing", {"proxy": {"concurrency": 6}}, created="2026-01-01T00:00:00Z")
    assert value(resolve([second, first], pod()), "proxy.concurrency") == 3
    # objects that already exist (with a timestamp) are older than anything being loaded now
    assert value(resolve([second, first, existing], pod()), "proxy.concurrency") == 6


def test_global_conflict_is_reported() -> None:
    result = resolve([config(ROOT, "a", {}, created="2026-01-01T00:00:00Z"),
                      config(ROOT, "b", {}, created="2026-01-02T00:00:00Z")], pod())
    assert [w["objects"] for w in result["warnings"] if w["code"] == "GlobalConflict"] == [
        [f"{ROOT}/a", f"{ROOT}/b"]]


def test_root_namespace_pods_skip_the_namespace_layer() -> None:
    global_config = config(ROOT, "mesh-wide", {"proxy": {"concurrency": 3}})
    other_namespace = config("ai", "ns", {"proxy": {"concurrency": 4}})
    root_pod = resolve([global_config, other_namespace], pod(namespace=ROOT))
    assert layer(root_pod, "proxy.concurrency") == "global"
    assert [e["source"]["layer"] for e in root_pod["fields"]["proxy.concurrency"]["overridden"]] == [
        "default"]


def test_root_namespace_follows_the_mesh_config_and_the_flag() -> None:
    config_in_mesh_root = config("mesh-root", "wide", {"proxy": {"concurrency": 3}})
    moved = mesh({}, root="mesh-root")
    assert layer(resolve([config_in_mesh_root], pod(), moved), "proxy.concurrency") == "global"
    assert layer(resolve([config_in_mesh_root], pod()), "proxy.concurrency") == "default"
    from kubectl_meshcfg.core.resolve import Resolver
    by_flag = Resolver([config_in_mesh_root], None, root_namespace="mesh-root").resolve(pod())
    assert layer(by_flag, "proxy.concurrency") == "global"


def test_workload_objects_only_match_pods_of_their_own_namespace_with_all_labels() -> None:
    wl = config("ai", "wl", {"selector": {"matchLabels": {"a": "1", "b": "2"}},
                             "proxy": {"concurrency": 5}})
    assert layer(resolve([wl], pod(labels={"a": "1", "b": "2", "c": "3"})), "proxy.concurrency") == "workload"
    assert layer(resolve([wl], pod(labels={"a": "1"})), "proxy.concurrency") == "default"
    assert layer(resolve([wl], pod(namespace="other", labels={"a": "1", "b": "2"})),
                 "proxy.concurrency") == "default"


def test_proxy_metadata_merges_key_by_key_across_layers() -> None:
    configs = [config(ROOT, "g", {"proxy": {"proxyMetadata": {"A": "global", "B": "global"}}}),
               config("ai", "ns", {"proxy": {"proxyMetadata": {"B": "namespace"}}})]
    target = pod(annotations={"proxy.istio.io/config": "proxyMetadata: {C: pod}"})
    result = resolve(configs, target, mesh({"proxyMetadata": {"A": "mesh", "D": "mesh"}}))
    assert {k: f["value"] for k, f in result["fields"].items() if "proxyMetadata" in k} == {
        "proxy.proxyMetadata.A": "global", "proxy.proxyMetadata.B": "namespace",
        "proxy.proxyMetadata.C": "pod", "proxy.proxyMetadata.D": "mesh"}
    # the pod's own proxy.istio.io/config is the only way to the injector for A and B, and
    # render never changes it: what the objects say cannot reach the sidecar
    assert codes(result) == ["UserAnnotationBlocks"] * 2
    assert [w["message"].split(":")[0] for w in result["warnings"]] == [
        "proxy.proxyMetadata.A", "proxy.proxyMetadata.B"]


def test_atomic_leaves_are_replaced_whole() -> None:
    configs = [config(ROOT, "g", {"proxy": {"proxyStatsMatcher": {"inclusionPrefixes": ["a"]}}}),
               config("ai", "ns", {"proxy": {"proxyStatsMatcher": {"inclusionSuffixes": ["b"]}}})]
    assert value(resolve(configs, pod()), "proxy.proxyStatsMatcher") == {"inclusionSuffixes": ["b"]}
