"""The obviously-correct reference resolver: SPEC section 2 read literally.

It scans every config for every target and rebuilds every layer each time. It is the
test oracle that the fast `resolve.Resolver` must agree with, and the benchmark baseline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from kubectl_meshcfg.core import agentstats, blocked, fields, hold, warnings
from kubectl_meshcfg.core import annotations as ann
from kubectl_meshcfg.core import proxyconfigs as pcs
from kubectl_meshcfg.core.formats import parse_quantity
from kubectl_meshcfg.core.model import (
    API_VERSION,
    InjectorValues,
    MeshConfig,
    SidecarProxyConfig,
    Target,
)
from kubectl_meshcfg.core.resolve import ANNOTATION_FIRST, LAYER_ORDER, Revisions, config_source


def resolve_naive(configs: Sequence[SidecarProxyConfig], mesh: MeshConfig | None,
                  target: Target, root_namespace: str | None = None,
                  precedence: str | None = None, injector: InjectorValues | None = None,
                  proxy_configs: Sequence[pcs.IstioProxyConfig] = (),
                  revisions: Revisions | None = None) -> dict[str, Any]:
    root = root_namespace or (mesh.root_namespace if mesh else "istio-system")
    if revisions is not None:     # the revision's own ConfigMaps, where it has them
        revision = _revision(target, revisions)
        if revision != "default":
            mesh = revisions.meshes.get(revision, mesh)
            injector = revisions.injectors.get(revision, injector)
    oldest_first = sorted(configs, key=SidecarProxyConfig.age_key)
    global_candidates = [c for c in oldest_first if c.namespace == root and c.selector is None]
    namespace_candidates = [c for c in oldest_first if c.selector is None
                            and c.namespace == target.namespace and c.namespace != root]
    workload_candidates = [c for c in oldest_first if c.selector is not None
                           and c.namespace == target.namespace and c.matches(target.labels)]
    if precedence is None:
        precedence = (global_candidates[0].precedence if global_candidates else None) \
            or ANNOTATION_FIRST

    layers: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {}
    defaults = {leaf.path: leaf.default for leaf in fields.LEAVES if leaf.default is not None}
    default_sources: dict[str, dict[str, Any]] = {path: {"layer": "default"} for path in defaults}
    if injector is not None:
        read = ann.read_injector_values(injector.values, "values")
        defaults.update(read.values)
        default_sources.update({path: {"layer": "default", "kind": "ConfigMap",
                                       "namespace": injector.namespace, "name": injector.name}
                                for path in read.values})
        found_default = [warnings.invalid_input(
            "InvalidInjectorValues", f"{injector.namespace}/{injector.name} {w}", r)
            for w, r in read.invalid]
    else:
        found_default = []
    layers["default"] = (defaults, default_sources)
    found: list[dict[str, Any]] = list(found_default)
    if mesh is not None:
        read = ann.read_proxy_config(mesh.default_config, "defaultConfig")
        source = {"layer": "mesh", "kind": "ConfigMap", "namespace": mesh.namespace,
                  "name": mesh.name}
        layers["mesh"] = (read.values, {path: source for path in read.values})
        found += [warnings.invalid_input("InvalidMeshConfig", f"{mesh.namespace}/{mesh.name} {w}", r)
                  for w, r in read.invalid]
    # Istio's ProxyConfigs, as pilot/pkg/model/proxy_config.go picks them (oldest first;
    # a selector without labels counts for no scope; no namespace layer in the root)
    # istiod of a revision reads unlabelled objects and those labelled istio.io/rev=<it>
    own = _revision(target, revisions or Revisions())
    istio_oldest = sorted((c for c in proxy_configs if not c.ignored
                           and c.revision in (None, own)), key=pcs.IstioProxyConfig.age_key)
    istio_candidates = {
        pcs.GLOBAL: [c for c in istio_oldest if c.namespace == root and c.selector is None],
        pcs.NAMESPACE: [c for c in istio_oldest if c.selector is None
                        and c.namespace == target.namespace and target.namespace != root],
        pcs.WORKLOAD: [c for c in istio_oldest if c.selector is not None
                       and c.namespace == target.namespace and c.matches(target.labels)]}
    conflicts: dict[str, list[dict[str, Any]]] = {}
    for layer, candidates, code in (("global", global_candidates, "GlobalConflict"),
                                    ("namespace", namespace_candidates, "NamespaceConflict"),
                                    ("workload", workload_candidates, "WorkloadConflict")):
        conflicts[layer] = []
        if candidates:
            winner = candidates[0]
            layers[layer] = (dict(winner.values),
                             {path: config_source(layer, winner) for path in winner.values})
            if len(candidates) > 1:
                conflicts[layer].append(warnings.conflict(code, layer, winner.ref,
                                                          [c.ref for c in candidates[1:]]))
    for layer, candidates in istio_candidates.items():
        conflicts[layer] = pcs.conflicts(layer, candidates) + pcs.invalid_values(candidates[:1])
        if candidates:
            layers[layer] = (dict(candidates[0].values),
                             {path: candidates[0].source(layer) for path in candidates[0].values})
    # the order the fast path reports them in: base, stack, then the target's own
    found += conflicts[pcs.GLOBAL] + conflicts["global"] + conflicts[pcs.NAMESPACE] \
        + conflicts["namespace"] + pcs.invalid_values(istio_candidates[pcs.WORKLOAD][:1]) \
        + conflicts["workload"] + pcs.conflicts(pcs.WORKLOAD, istio_candidates[pcs.WORKLOAD])
    annotation_layer = ann.read_annotations(target.annotations, target.synced_keys)
    layers["annotation"] = (annotation_layer.values,
                            {path: {"layer": "annotation", "annotation": key}
                             for path, key in annotation_layer.keys.items()})

    result_fields: dict[str, Any] = {}
    all_leaves = {path for values, _ in layers.values() for path in values}
    for path in sorted(all_leaves, key=fields.sort_key):
        chain = [{"value": layers[name][0][path], "source": layers[name][1][path]}
                 for name in reversed(_order(precedence, path))
                 if name in layers and path in layers[name][0]]
        result_fields[path] = {"value": chain[0]["value"], "source": chain[0]["source"],
                               "overridden": chain[1:]}
    _derive_concurrency(result_fields)
    result_fields = _with_agent_stats(result_fields)
    found += warnings.partial_resources(annotation_layer.resource_keys)
    found += [warnings.invalid_input("InvalidAnnotation", w, r) for w, r in annotation_layer.invalid]
    found += _hold_or(result_fields, target)
    found += blocked.findings(result_fields, ann.user_keys(target.annotations, target.synced_keys),
                              frozenset(annotation_layer.keys.values()))
    found += warnings.value_warnings(result_fields, target.grace_period)
    found += warnings.untrusted_code(result_fields, root)
    found += agentstats.stats_warnings(result_fields, target.annotations, target.synced_keys)
    workload_pc = istio_candidates[pcs.WORKLOAD][0] if istio_candidates[pcs.WORKLOAD] else None
    found += pcs.overridden_at_runtime(result_fields, workload_pc)
    if target.kind == "Pod" and target.pod_spec:
        found += warnings.stale_sidecar(result_fields, target.pod_spec, target.annotations)
    return {"apiVersion": API_VERSION, "kind": "EffectiveSidecarConfig",
            "target": {"kind": target.kind, "namespace": target.namespace, "name": target.name},
            "precedence": precedence, "fields": result_fields, "warnings": found}


def _with_agent_stats(result_fields: dict[str, Any]) -> dict[str, Any]:
    """An enabled drain agent adds the stats it reads to the effective matcher."""
    agent = result_fields.get(agentstats.AGENT)
    if not agentstats.agent_enabled(agent):
        return result_fields
    merged = agentstats.with_agent_field(result_fields.get(agentstats.MATCHER), agent)
    if merged is not None:
        result_fields[agentstats.MATCHER] = merged
    return {path: result_fields[path] for path in sorted(result_fields, key=fields.sort_key)}


def _order(precedence: str, path: str) -> list[str]:
    """Layers lowest first for one leaf: Istio's ProxyConfigs above the mesh config; the
    workload one below every meshcfg layer for concurrency (pilot-agent applies
    proxy.istio.io/config again at start-up) and above them all for what injection freezes
    into the environment (proxyMetadata)."""
    ours = list(LAYER_ORDER[precedence][2:])
    if path == "proxy.concurrency":
        return ["default", "mesh", pcs.GLOBAL, pcs.NAMESPACE, pcs.WORKLOAD, *ours]
    return ["default", "mesh", pcs.GLOBAL, pcs.NAMESPACE, *ours, pcs.WORKLOAD]


def _revision(target: Target, revisions: Revisions) -> str:
    """SPEC section 2, read literally: the injecting revision once injected (annotation
    istio.io/rev, else `revision` of sidecar.istio.io/status); before, namespace
    istio-injection=enabled is the default revision, else the namespace's istio.io/rev label,
    else the pod's; a name that is a revision tag stands for the tag's revision."""
    if target.annotations.get("istio.io/rev"):
        return target.annotations["istio.io/rev"]
    try:
        status = json.loads(target.annotations.get("sidecar.istio.io/status") or "null")
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("revision"):
        return str(status["revision"])
    namespace = revisions.namespace_labels.get(target.namespace, {})
    if namespace.get("istio-injection") == "enabled":
        return "default"
    name = namespace.get("istio.io/rev") or target.labels.get("istio.io/rev")
    if not name:
        return "default"
    return revisions.tags.get(name, name)


def _hold_or(result_fields: dict[str, Any], target: Target) -> list[dict[str, Any]]:
    """Istio's template: hold = ProxyConfig's value OR the injector values' key (a `true`
    there is in the default layer, from the injector ConfigMap); not for native sidecars."""
    field = result_fields.get(hold.LEAF)
    native_annotation = target.annotations.get("sidecar.istio.io/nativeSidecar")
    injected_as_init = any(c.get("name") == "istio-proxy"
                           for c in target.pod_spec.get("initContainers") or [])
    if field is None or field["value"] is not False or injected_as_init or \
            native_annotation not in (None, "false"):
        return []
    entries = [{"value": field["value"], "source": field["source"]}, *field["overridden"]]
    forcing = [e for e in entries if e["value"] is True and e["source"]["layer"] == "default"
               and e["source"].get("kind") == "ConfigMap"]
    if not forcing:
        return []
    result_fields[hold.LEAF] = {"value": True, "source": forcing[0]["source"],
                                "overridden": [e for e in entries if e is not forcing[0]]}
    return [hold.warning(field["source"], forcing[0]["source"])]


def _derive_concurrency(result_fields: dict[str, Any]) -> None:
    """SPEC: concurrency unset = ceil(CPU limit), 0 without a limit, with the default source."""
    limit = result_fields.get("proxy.resources.limits.cpu")
    cores = parse_quantity(str(limit["value"])) if limit else None
    derived = math.ceil(cores) if cores else 0
    field = result_fields["proxy.concurrency"]
    for entry in [field, *field["overridden"]]:
        if entry["value"] is fields.DERIVED_CONCURRENCY:
            entry["value"] = derived
