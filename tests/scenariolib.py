"""Generators of resolution scenarios (hypothesis): SidecarProxyConfigs at every layer and
a target pod. Shared by the unit property tests and the round trip through the real
injector (tests/istio/test_round_trip.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from builders import ROOT, config, pod
from hypothesis import strategies as st

from kubectl_meshcfg.core import fields
from kubectl_meshcfg.core import proxyconfigs as pcs
from kubectl_meshcfg.core.model import InjectorValues, MeshConfig, Origin
from kubectl_meshcfg.core.resolve import Revisions
from kubectl_meshcfg.core.revisions import REV_LABEL

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


def istio_pc(namespace: str, name: str, spec: dict[str, Any], created: str | None = None,
             order: int = 0, revision: str | None = None) -> pcs.IstioProxyConfig:
    """An Istio ProxyConfig (networking.istio.io/v1beta1), parsed as the loader does."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if revision is not None:
        meta["labels"] = {REV_LABEL: revision}
    if created:
        meta["creationTimestamp"] = created
    doc = {"apiVersion": pcs.API_VERSION, "kind": pcs.KIND, "metadata": meta, "spec": spec}
    return pcs.parse(doc, Origin("istio.yaml", order + 1), "default", order)


@st.composite
def istio_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["concurrency"] = draw(st.integers(0, 6))
    if draw(st.booleans()):
        spec["environmentVariables"] = draw(st.dictionaries(
            st.sampled_from(["A", "B", "K", fields.DNS_CAPTURE_KEY]),
            st.sampled_from(["x", "y", "true", "false"]), max_size=3))
    return spec


@st.composite
def proxy_config_sets(draw: st.DrawFn, revisioned: bool = False) -> list[pcs.IstioProxyConfig]:
    """Istio ProxyConfigs at every scope, some competing, some created in the same second
    (with `revisioned`, some labelled for the default or a canary revision)."""
    found = []
    for index in range(draw(st.integers(0, 5))):
        namespace = draw(st.sampled_from([ROOT, "ai", "other"]))
        spec = draw(istio_specs())
        if draw(st.booleans()):
            spec["selector"] = {"matchLabels": draw(LABELS.filter(bool))}
        created = draw(st.none() | st.sampled_from(
            [f"2026-0{m}-01T00:00:00Z" for m in range(1, 4)]))
        revision = draw(st.sampled_from([None, "default", "canary"])) if revisioned else None
        found.append(istio_pc(namespace, f"p{index}", spec, created=created, order=index,
                              revision=revision))
    return found


REVISION_NAMES = ["default", "canary", "prod"]      # prod is a tag of canary when tagged


def _injector_values(draw: st.DrawFn) -> dict[str, Any]:
    cpu = draw(st.sampled_from(["10m", "100m", "250m"]))
    proxy: dict[str, Any] = {"resources": {
        "requests": {"cpu": cpu, "memory": "40Mi"},
        "limits": {"cpu": draw(st.sampled_from(["1", "2000m", "3"])), "memory": "1Gi"}}}
    if draw(st.booleans()):
        proxy["logLevel"] = draw(st.sampled_from(["error", "info"]))
    if draw(st.integers(0, 3)):    # mostly true: it overrides any false above it
        proxy["holdApplicationUntilProxyStarts"] = draw(st.integers(0, 3)) > 0
    return {"global": {"proxy": proxy}}


@st.composite
def revision_setups(draw: st.DrawFn, target: Any) -> tuple[Any, Any, Any, Any]:
    """(default injector or None, default mesh or None, Revisions, the target with revision
    labels or annotations): the default revision and `canary` with their own ConfigMaps,
    namespace labels, maybe the tag `prod` -> canary, and the target's own revision bits."""
    def injector(name: str) -> InjectorValues | None:
        return InjectorValues(ROOT, name, _injector_values(draw)) if draw(st.booleans()) else None

    def mesh(name: str) -> MeshConfig | None:
        if not draw(st.booleans()):
            return None
        default_config = draw(st.fixed_dictionaries(
            {"holdApplicationUntilProxyStarts": st.booleans()}, optional={
                "concurrency": st.integers(0, 4),
                "terminationDrainDuration": st.sampled_from(["7s", "20s"])}))
        return MeshConfig(ROOT, name, ROOT, default_config)

    canary_injector, canary_mesh = injector("istio-sidecar-injector-canary"), mesh("istio-canary")
    revisions = Revisions(
        meshes={"canary": canary_mesh} if canary_mesh else {},
        injectors={"canary": canary_injector} if canary_injector else {},
        namespace_labels={ns: draw(st.fixed_dictionaries({}, optional={
            "istio-injection": st.sampled_from(["enabled", "disabled"]),
            "istio.io/rev": st.sampled_from(REVISION_NAMES)})) for ns in ("ai", ROOT)},
        tags={"prod": "canary"} if draw(st.integers(0, 3)) else {})
    labels = dict(target.labels)
    annotations = dict(target.annotations)
    if draw(st.booleans()):
        labels["istio.io/rev"] = draw(st.sampled_from(REVISION_NAMES))
    injected = draw(st.sampled_from(["no", "no", "annotation", "status"]))
    if injected == "annotation":
        annotations["istio.io/rev"] = draw(st.sampled_from(["default", "canary"]))
    elif injected == "status":
        annotations["sidecar.istio.io/status"] = draw(st.sampled_from(
            ['{"revision":"canary"}', '{"revision":"default"}', "not json"]))
    if draw(st.booleans()):
        annotations["sidecar.istio.io/nativeSidecar"] = draw(st.sampled_from(["true", "false"]))
    return (injector("istio-sidecar-injector"), mesh("istio"), revisions,
            replace(target, labels=labels, annotations=annotations))
