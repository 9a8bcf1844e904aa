"""Istio's own ProxyConfig objects as sources: scopes, oldest wins, the root-namespace skip,
proxyMetadata merged key by key, and where each layer sits in both precedence modes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import ROOT, codes, config, layer, mesh, pod, value

from kubectl_meshcfg.core import proxyconfigs as pcs
from kubectl_meshcfg.core import render as rendering
from kubectl_meshcfg.core import staleness
from kubectl_meshcfg.core.errors import InvalidInput
from kubectl_meshcfg.core.model import Origin, SidecarProxyConfig, Target
from kubectl_meshcfg.core.resolve import Resolver

SELECT = {"selector": {"matchLabels": {"app": "a"}}}


def istio_pc(namespace: str, name: str, spec: dict[str, Any], created: str | None = None,
             order: int = 0, version: str = "v1beta1") -> pcs.IstioProxyConfig:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created:
        meta["creationTimestamp"] = created
    doc = {"apiVersion": f"networking.istio.io/{version}", "kind": "ProxyConfig",
           "metadata": meta, "spec": spec}
    return pcs.parse(doc, Origin("pc.yaml", order + 1), "default", order)


def run(configs: list[SidecarProxyConfig], proxy_configs: list[pcs.IstioProxyConfig],
        target: Target, precedence: str | None = None, mesh_config: Any = None) -> dict[str, Any]:
    resolver = Resolver(configs, mesh_config, precedence=precedence, proxy_configs=proxy_configs)
    return dict(resolver.resolve(target))


def source(result: dict[str, Any], leaf: str) -> dict[str, Any]:
    return dict(result["fields"][leaf]["source"])


def test_each_scope_names_its_layer_and_object() -> None:
    found = run([], [istio_pc(ROOT, "g", {"concurrency": 3})], pod("ai", labels={"app": "a"}),
                mesh_config=mesh({"concurrency": 9}))
    assert value(found, "proxy.concurrency") == 3
    assert source(found, "proxy.concurrency") == {
        "layer": "istio-global", "kind": "ProxyConfig", "namespace": ROOT, "name": "g"}
    assert found["fields"]["proxy.concurrency"]["overridden"][0]["value"] == 9

    found = run([], [istio_pc(ROOT, "g", {"concurrency": 3}), istio_pc("ai", "n", {"concurrency": 5}),
                     istio_pc("other", "n", {"concurrency": 7})], pod("ai"))
    assert (value(found, "proxy.concurrency"), layer(found, "proxy.concurrency")) == (5, "istio-namespace")

    found = run([], [istio_pc("ai", "n", {"concurrency": 5}),
                     istio_pc("ai", "w", {**SELECT, "concurrency": 6})], pod("ai", labels={"app": "a"}))
    assert (value(found, "proxy.concurrency"), layer(found, "proxy.concurrency")) == (6, "istio-workload")
    other = run([], [istio_pc("ai", "w", {**SELECT, "concurrency": 6})], pod("ai", labels={"app": "b"}))
    assert layer(other, "proxy.concurrency") == "default"


def test_a_root_namespace_object_is_global_and_no_namespace_layer_is_read_there() -> None:
    configs = [istio_pc(ROOT, "g", {"concurrency": 3}, "2026-01-01T00:00:00Z"),
               istio_pc(ROOT, "g2", {"concurrency": 4}, "2026-01-02T00:00:00Z")]
    found = run([], configs, pod(ROOT))
    assert (value(found, "proxy.concurrency"), layer(found, "proxy.concurrency")) == (3, "istio-global")
    assert [e["source"]["layer"] for e in found["fields"]["proxy.concurrency"]["overridden"]] == \
        ["default"]   # the loser is not a namespace layer of root-namespace pods
    assert codes(found)[0] == "ProxyConfigConflict"


def test_oldest_wins_within_a_scope_then_name() -> None:
    newer = istio_pc("ai", "a-newer", {"concurrency": 1}, "2026-01-02T00:00:00Z")
    older = istio_pc("ai", "z-older", {"concurrency": 2}, "2026-01-01T00:00:00Z")
    found = run([], [newer, older], pod("ai"))
    assert value(found, "proxy.concurrency") == 2
    conflict = [w for w in found["warnings"] if w["code"] == "ProxyConfigConflict"]
    assert conflict[0]["objects"] == ["ai/z-older", "ai/a-newer"]
    assert "istio-namespace" in conflict[0]["message"]
    same_second = [istio_pc("ai", "b", {"concurrency": 1}, "2026-01-01T00:00:00Z"),
                   istio_pc("ai", "a", {"concurrency": 2}, "2026-01-01T00:00:00Z")]
    assert value(run([], same_second, pod("ai")), "proxy.concurrency") == 2
    wl = [istio_pc("ai", "w2", {**SELECT, "concurrency": 1}, "2026-01-02T00:00:00Z"),
          istio_pc("ai", "w1", {"selector": {"matchLabels": {"tier": "x"}}, "concurrency": 2},
                   "2026-01-01T00:00:00Z")]
    found = run([], wl, pod("ai", labels={"app": "a", "tier": "x"}))
    assert value(found, "proxy.concurrency") == 2
    assert [w["objects"] for w in found["warnings"] if w["code"] == "ProxyConfigConflict"] == \
        [["ai/w1", "ai/w2"]]


def test_an_empty_selector_is_ignored_as_istiod_ignores_it() -> None:
    found = run([], [istio_pc("ai", "e", {"selector": {}, "concurrency": 3}),
                     istio_pc("ai", "m", {"selector": {"matchLabels": {}}, "concurrency": 4})],
                pod("ai", labels={"app": "a"}))
    assert layer(found, "proxy.concurrency") == "default"


def test_proxy_metadata_merges_key_by_key_and_the_workload_object_tops_injection() -> None:
    istio = [istio_pc(ROOT, "g", {"environmentVariables": {"A": "g", "B": "g"}}),
             istio_pc("ai", "n", {"environmentVariables": {"B": "n"}}),
             istio_pc("ai", "w", {**SELECT, "environmentVariables": {"C": "w"}})]
    ours = [config("ai", "ns", {"proxy": {"proxyMetadata": {"A": "spc", "C": "spc", "D": "spc"}}})]
    found = run(ours, istio, pod("ai", labels={"app": "a"},
                                 annotations={"proxy.istio.io/config": "proxyMetadata: {D: ann}"}))
    got = {k: (value(found, f"proxy.proxyMetadata.{k}"), layer(found, f"proxy.proxyMetadata.{k}"))
           for k in "ABCD"}
    assert got == {"A": ("spc", "namespace"), "B": ("n", "istio-namespace"),
                   "C": ("w", "istio-workload"), "D": ("ann", "annotation")}


def test_dns_capture_comes_from_the_environment_variable() -> None:
    found = run([], [istio_pc("ai", "n", {"environmentVariables": {"ISTIO_META_DNS_CAPTURE": "true"}})],
                pod("ai"))
    assert (value(found, "proxy.dnsCapture"), layer(found, "proxy.dnsCapture")) == (True, "istio-namespace")
    # not a Go boolean: the proxy reads false, whatever the mesh config says
    bad = run([], [istio_pc("ai", "n", {"environmentVariables": {"ISTIO_META_DNS_CAPTURE": "yes"}})],
              pod("ai"), mesh_config=mesh({"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}}))
    assert (value(bad, "proxy.dnsCapture"), layer(bad, "proxy.dnsCapture")) == (False, "istio-namespace")
    assert "InvalidProxyConfig" in codes(bad)
    go_spelling = run([], [istio_pc("ai", "n", {"environmentVariables": {"ISTIO_META_DNS_CAPTURE": "1"}})],
                      pod("ai"))
    assert value(go_spelling, "proxy.dnsCapture") is True


@pytest.mark.parametrize("precedence", ["annotation-first", "workload-first"])
def test_run_time_concurrency_the_annotation_beats_the_workload_object(precedence: str) -> None:
    istio = [istio_pc("ai", "w", {**SELECT, "concurrency": 4})]
    annotated = pod("ai", labels={"app": "a"}, annotations={"proxy.istio.io/config": "concurrency: 2"})
    found = run([], istio, annotated, precedence)
    assert (value(found, "proxy.concurrency"), layer(found, "proxy.concurrency")) == (2, "annotation")
    assert found["fields"]["proxy.concurrency"]["overridden"][0]["source"]["layer"] == "istio-workload"
    warning = [w for w in found["warnings"] if w["code"] == "ProxyConfigOverriddenAtRuntime"]
    assert warning and warning[0]["objects"] == ["ai/w", "annotation proxy.istio.io/config"]
    assert "PROXY_CONFIG says 4" in warning[0]["message"] and "Envoy runs 2" in warning[0]["message"]
    # a meshcfg object is delivered in the annotation too: it beats the workload object
    spc = [config(ROOT, "g", {"proxy": {"concurrency": 3}})]
    found = run(spc, istio, pod("ai", labels={"app": "a"}), precedence)
    assert (value(found, "proxy.concurrency"), layer(found, "proxy.concurrency")) == (3, "global")
    assert "ProxyConfigOverriddenAtRuntime" in codes(found)
    # agreeing values: nothing to warn about
    same = pod("ai", labels={"app": "a"}, annotations={"proxy.istio.io/config": "concurrency: 4"})
    assert "ProxyConfigOverriddenAtRuntime" not in codes(run([], istio, same, precedence))


def test_the_precedence_modes_order_meshcfg_layers_between_the_istio_ones() -> None:
    istio = [istio_pc("ai", "n", {"environmentVariables": {"K": "istio-ns"}}),
             istio_pc("ai", "w", {**SELECT, "environmentVariables": {"W": "istio-wl"},
                                  "concurrency": 8})]
    ours = [config("ai", "wl", {**SELECT, "proxy": {"concurrency": 3,
                                                    "proxyMetadata": {"K": "spc", "W": "spc"}}})]
    annotated = pod("ai", labels={"app": "a"}, annotations={
        "proxy.istio.io/config": "{concurrency: 2, proxyMetadata: {K: ann, W: ann}}"})
    first = run(ours, istio, annotated, "annotation-first")
    wl_first = run(ours, istio, annotated, "workload-first")
    assert (value(first, "proxy.proxyMetadata.K"), value(wl_first, "proxy.proxyMetadata.K")) == \
        ("ann", "spc")
    assert value(first, "proxy.proxyMetadata.W") == value(wl_first, "proxy.proxyMetadata.W") == "istio-wl"
    assert (value(first, "proxy.concurrency"), value(wl_first, "proxy.concurrency")) == (2, 3)
    chain = [e["source"]["layer"] for e in wl_first["fields"]["proxy.concurrency"]["overridden"]]
    assert chain == ["annotation", "istio-workload", "default"]


def test_render_leaves_what_a_proxyconfig_sets_to_istiod() -> None:
    istio = [istio_pc("ai", "n", {"environmentVariables": {"ISTIO_META_DNS_CAPTURE": "true", "K": "n"}}),
             istio_pc("ai", "w", {**SELECT, "concurrency": 4})]
    target = pod("ai", labels={"app": "a"})
    target = Target("Deployment", "ai", "web", target.labels, {})
    effective = Resolver([config("ai", "ns", {"proxy": {"proxyMetadata": {"M": "ours"}}})],
                         proxy_configs=istio).resolve(target)
    written = rendering.render(target, effective).apply_config
    text = written["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"]
    import yaml
    rendered = yaml.safe_load(text)
    assert "concurrency" not in rendered
    assert rendered["proxyMetadata"] == {"M": "ours"}
    # a meshcfg value that must beat the workload object at run time is written
    effective = Resolver([config(ROOT, "g", {"proxy": {"concurrency": 2}})],
                         proxy_configs=istio).resolve(target)
    text = rendering.render(target, effective).apply_config["spec"]["template"]["metadata"][
        "annotations"]["proxy.istio.io/config"]
    assert yaml.safe_load(text)["concurrency"] == 2


def test_a_running_sidecar_is_read_as_pilot_agent_rebuilds_it() -> None:
    pod_spec = {"containers": [{"name": "istio-proxy", "env": [
        {"name": "PROXY_CONFIG", "value": json.dumps({"concurrency": 4,
                                                      "proxyMetadata": {"K": "injected"}})}]}]}
    annotations = {"proxy.istio.io/config": "{concurrency: 2, proxyMetadata: {K: later}}"}
    running = staleness.running_values(pod_spec, annotations)
    assert running is not None
    assert running["proxy.concurrency"] == 2
    assert running["proxy.proxyMetadata.K"] == "injected"
    assert staleness.running_values(pod_spec)["proxy.concurrency"] == 4  # type: ignore[index]


@pytest.mark.parametrize("spec, version, field", [
    ({"concurrency": -1}, "v1beta1", "spec.concurrency"),
    ({"concurrency": "2"}, "v1beta1", "spec.concurrency"),
    ({"environmentVariables": {"A": 1}}, "v1beta1", "spec.environmentVariables.A"),
    ({"concurency": 2}, "v1beta1", "spec.concurency"),
    ({"selector": {"matchLabels": {"app": "*"}}}, "v1beta1", "spec.selector.matchLabels"),
    ({}, "v1", "apiVersion"),
])
def test_invalid_proxyconfigs_name_file_document_object_and_field(
        spec: dict[str, Any], version: str, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        istio_pc("ai", "bad", spec, version=version)
    location, _ = raised.value.problems[0]
    assert (location.file, location.document, location.obj, location.field) == \
        ("pc.yaml", 1, "ProxyConfig ai/bad", field)


def test_diff_overlays_proxyconfigs_and_reaches_their_namespaces() -> None:
    from kubectl_meshcfg.core.diffing import affected_namespaces, compare, overlay
    from kubectl_meshcfg.core.inventory import Inventory

    before = Inventory(targets=[pod("ai", "p"), pod("shop", "q")],
                       proxy_configs=[istio_pc("ai", "n", {"concurrency": 3}, "2026-01-01T00:00:00Z")])
    change = Inventory(proxy_configs=[istio_pc("ai", "n", {"concurrency": 5})])
    after = overlay(before, change)
    assert [(c.ref, c.created) for c in after.proxy_configs] == [("ai/n", "2026-01-01T00:00:00Z")]
    found = compare(before, after, Resolver([], proxy_configs=before.proxy_configs).resolve,
                    Resolver([], proxy_configs=after.proxy_configs).resolve, None)
    assert [i["target"]["name"] for i in found["items"]] == ["p"]
    assert affected_namespaces(change, ROOT) == {"ai"}
    assert affected_namespaces(Inventory(proxy_configs=[istio_pc(ROOT, "g", {})]), ROOT) is None


def test_an_object_labelled_for_a_revision_is_read_by_that_revisions_istiod_only() -> None:
    canary = [istio_pc("ai", "c", {"concurrency": 7})]
    labelled = pcs.parse({"apiVersion": "networking.istio.io/v1beta1", "kind": "ProxyConfig",
                          "metadata": {"name": "c", "namespace": "ai",
                                       "labels": {"istio.io/rev": "canary"}},
                          "spec": {"concurrency": 7}}, Origin("pc.yaml", 1), "default")
    assert labelled.revision == "canary" and canary[0].revision is None
    on_default = run([], [labelled], pod("ai"))
    on_canary = run([], [labelled], pod("ai", labels={"istio.io/rev": "canary"}))
    assert layer(on_default, "proxy.concurrency") == "default"
    assert (value(on_canary, "proxy.concurrency"), layer(on_canary, "proxy.concurrency")) == \
        (7, "istio-namespace")
    assert value(run([], canary, pod("ai", labels={"istio.io/rev": "canary"})),
                 "proxy.concurrency") == 7
