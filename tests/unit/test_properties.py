"""Properties of resolution, checked on generated configs and pods (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

from builders import ROOT, config, pod
from hypothesis import given, settings
from hypothesis import strategies as st
from naivelib import resolve_naive

from kubectl_meshcfg.core import fields
from kubectl_meshcfg.core.resolve import LAYER_ORDER, Resolver

SAMPLES: dict[str, list[Any]] = {
    "quantity": ["100m", "1", "2", "500m", "1Gi", "256Mi", "1.5"],
    "int": [0, 1, 2, 5],
    "bool": [True, False],
    "enum": ["debug", "info", "warning"],
    "componentLog": ["misc:error", "upstream:debug,misc:info"],
    "duration": ["5s", "15s", "1m", "45s"],
    "ports": ["80", "8080,9090", "443", ""],
    "cidrs": ["10.0.0.0/8", "169.254.169.254/32", ""],
}
OBJECT_SAMPLES: dict[str, list[Any]] = {
    "statsMatcher": [{"inclusionPrefixes": ["a"]}, {"inclusionSuffixes": ["b"]}],
    "keyProvider": [{"cryptomb": {"pollDelay": "10ms", "fallback": True}}],
    "handler": [{"exec": {"command": ["sleep", "1"]}}, {"sleep": {"seconds": 2}}],
    "drainAgent": [{"enabled": True}, {"enabled": False, "minDrainDuration": "2s"}],
}
LABELS = st.dictionaries(st.sampled_from(["app", "tier", "perf"]), st.sampled_from(["a", "b"]),
                         max_size=3)
ANNOTATIONS = st.dictionaries(
    st.sampled_from(["sidecar.istio.io/proxyCPU", "sidecar.istio.io/logLevel",
                     "traffic.sidecar.istio.io/excludeInboundPorts", "proxy.istio.io/config",
                     "sidecar.istio.io/proxyMemoryLimit"]),
    st.sampled_from(["1", "debug", "8080", "concurrency: 3", "proxyMetadata: {K: v}", "bad value",
                     "2Gi", "terminationDrainDuration: 40s"]),
    max_size=4)


def samples(leaf: fields.Leaf) -> list[Any]:
    if leaf.kind == "object":
        return OBJECT_SAMPLES[leaf.atomic]
    if leaf.kind == "ports" and not leaf.include:
        return [v for v in SAMPLES["ports"] if v != "*"]
    return SAMPLES[leaf.kind]


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.lists(st.sampled_from(fields.LEAVES), max_size=6, unique=True))
    spec: dict[str, Any] = {}
    for leaf in chosen:
        if leaf.path == "lifecycle.preStop" and any(c.path == "lifecycle.drainAgent" for c in chosen):
            continue
        node = spec
        *parents, last = leaf.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = draw(st.sampled_from(samples(leaf)))
    if draw(st.booleans()):
        spec.setdefault("proxy", {})["proxyMetadata"] = draw(
            st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(["x", "y"]), max_size=2))
    return spec


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Any], Any]:
    configs = []
    for index in range(draw(st.integers(0, 7))):
        scope = draw(st.sampled_from(["global", "namespace", "workload"]))
        spec = draw(specs())
        namespace = ROOT if scope == "global" else "ai"
        if scope == "workload":
            spec["selector"] = {"matchLabels": draw(LABELS.filter(bool))}
        if scope == "global" and draw(st.booleans()):
            spec["precedence"] = draw(st.sampled_from(["annotation-first", "workload-first"]))
        created = draw(st.none() | st.sampled_from(
            [f"2026-0{m}-01T00:00:00Z" for m in range(1, 6)]))
        configs.append(config(namespace, f"c{index}", spec, created=created, order=index))
    target = pod(namespace=draw(st.sampled_from(["ai", ROOT])), labels=draw(LABELS),
                 annotations=draw(ANNOTATIONS), grace=draw(st.none() | st.integers(0, 60)))
    return configs, target


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.sampled_from([None, "annotation-first", "workload-first"]))
def test_the_fast_resolver_agrees_with_the_naive_reading_of_the_spec(
        scenario: tuple[list[Any], Any], precedence: str | None) -> None:
    configs, target = scenario
    fast = Resolver(configs, None, precedence=precedence).resolve(target)
    assert fast == resolve_naive(configs, None, target, precedence=precedence)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms())
def test_document_order_does_not_matter_beyond_the_creation_order_rule(
        scenario: tuple[list[Any], Any], rnd: random.Random) -> None:
    configs, target = scenario
    shuffled = list(configs)
    rnd.shuffle(shuffled)
    assert Resolver(shuffled).resolve(target) == Resolver(configs).resolve(target)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_a_lower_layer_never_changes_a_field_a_higher_layer_sets(
        scenario: tuple[list[Any], Any]) -> None:
    configs, target = scenario
    result = Resolver(configs).resolve(target)
    order = LAYER_ORDER[result["precedence"]]
    for path, field in result["fields"].items():
        rank = order.index(field["source"]["layer"])
        lower = [order.index(e["source"]["layer"]) for e in field["overridden"]]
        assert all(r < rank for r in lower), path
        assert lower == sorted(lower, reverse=True), path
    # and dropping every object below the top layer that set a field leaves the field alone
    for path, field in result["fields"].items():
        if field["source"]["layer"] not in ("global", "namespace", "workload"):
            continue
        top = field["source"]
        keep = [c for c in configs
                if (c.namespace, c.name) == (top["namespace"], top["name"])
                or order.index(_scope(c)) > order.index(top["layer"])]
        kept = Resolver(keep, precedence=result["precedence"]).resolve(target)
        assert kept["fields"][path]["value"] == field["value"], path


def _scope(c: Any) -> str:
    if c.selector is not None:
        return "workload"
    return "global" if c.namespace == ROOT else "namespace"


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_every_resolved_value_validates(scenario: tuple[list[Any], Any]) -> None:
    configs, target = scenario
    for path, field in Resolver(configs).resolve(target)["fields"].items():
        if path == "proxy.concurrency" and field["source"]["layer"] == "default":
            # derived by pilot-agent from the CPU limit: any whole number of cores
            assert isinstance(field["value"], int) and field["value"] >= 0
            continue
        assert fields.check_leaf(fields.leaf_for(path), field["value"]) is None, path
