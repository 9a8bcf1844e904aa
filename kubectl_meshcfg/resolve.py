"""Resolution: every target's effective sidecar config, leaf by leaf, with provenance.

Pure and free of I/O. Layers, lowest first (SPEC section 2):
  annotation-first: default < mesh < global < namespace < workload < annotation
  workload-first:   default < mesh < global < namespace < annotation < workload

Everything but the annotation layer depends only on which SidecarProxyConfig objects win
for the target, so that part ("a stack") is built once per combination of winners and
shared; per target only the annotation layer and the value warnings are added.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import annotations as ann
from . import fields, warnings
from .model import API_VERSION, MeshConfig, SidecarProxyConfig, Target

ANNOTATION_FIRST = "annotation-first"
WORKLOAD_FIRST = "workload-first"
LAYER_ORDER = {
    ANNOTATION_FIRST: ("default", "mesh", "global", "namespace", "workload", "annotation"),
    WORKLOAD_FIRST: ("default", "mesh", "global", "namespace", "annotation", "workload"),
}
DEFAULT_SOURCE: dict[str, Any] = {"layer": "default"}

Entry = dict[str, Any]          # {"value": ..., "source": {...}}
Field = dict[str, Any]          # {"value": ..., "source": {...}, "overridden": [Entry, ...]}
Effective = dict[str, Any]      # the SPEC section 4 object


def config_source(layer: str, config: SidecarProxyConfig) -> dict[str, Any]:
    return {"layer": layer, "kind": "SidecarProxyConfig", "namespace": config.namespace,
            "name": config.name}


@dataclass(frozen=True)
class _Layer:
    source: dict[str, Any]
    values: Mapping[str, Any]


class _Stack:
    """The resolved layers of one combination of winning objects, annotation slot open."""

    def __init__(self, below: Sequence[_Layer], above: _Layer | None, found: list[Any]):
        self.below_desc: dict[str, list[Entry]] = defaultdict(list)
        for layer in below:
            for leaf, value in layer.values.items():
                self.below_desc[leaf].insert(0, {"value": value, "source": layer.source})
        self.above = above
        self.warnings = found
        self.fields: dict[str, Field] = {}
        for leaf in sorted(set(self.below_desc) | set(above.values if above else ()),
                           key=fields.sort_key):
            self.fields[leaf] = self._field(leaf, None)

    def _field(self, leaf: str, annotation: Entry | None) -> Field:
        chain = self.below_desc.get(leaf, [])
        if annotation is not None:
            chain = [annotation, *chain]
        if self.above is not None and leaf in self.above.values:
            chain = [{"value": self.above.values[leaf], "source": self.above.source}, *chain]
        top, rest = chain[0], chain[1:]
        return {"value": top["value"], "source": top["source"], "overridden": rest}

    def with_annotations(self, layer: ann.LayerInput, sources: dict[str, dict[str, Any]]
                         ) -> dict[str, Field]:
        if not layer.values:
            return dict(self.fields)
        result = dict(self.fields)
        for leaf, value in layer.values.items():
            source = sources.get(layer.keys[leaf])
            if source is None:
                source = sources[layer.keys[leaf]] = {"layer": "annotation",
                                                      "annotation": layer.keys[leaf]}
            result[leaf] = self._field(leaf, {"value": value, "source": source})
        if len(result) != len(self.fields):
            result = {leaf: result[leaf] for leaf in sorted(result, key=fields.sort_key)}
        return result


class Resolver:
    """Resolves targets against one set of SidecarProxyConfigs and one mesh config."""

    def __init__(self, configs: Iterable[SidecarProxyConfig], mesh: MeshConfig | None = None,
                 root_namespace: str | None = None, precedence: str | None = None,
                 istio_namespace: str = "istio-system"):
        self.root_namespace = root_namespace or (mesh.root_namespace if mesh else istio_namespace)
        by_age = sorted(configs, key=SidecarProxyConfig.age_key)
        self.global_configs = [c for c in by_age
                               if c.namespace == self.root_namespace and c.selector is None]
        self.namespace_configs: dict[str, list[SidecarProxyConfig]] = defaultdict(list)
        self.workload_configs: dict[str, list[SidecarProxyConfig]] = defaultdict(list)
        for config in by_age:
            if config.selector is not None:
                self.workload_configs[config.namespace].append(config)
            elif config.namespace != self.root_namespace:
                self.namespace_configs[config.namespace].append(config)
        winner = self.global_configs[0] if self.global_configs else None
        self.precedence = precedence or (winner.precedence if winner else None) or ANNOTATION_FIRST
        self._base = self._base_layers(mesh)
        self._stacks: dict[tuple[str | None, str | None], _Stack] = {}
        self._annotation_sources: dict[str, dict[str, Any]] = {}

    def _base_layers(self, mesh: MeshConfig | None) -> list[_Layer]:
        defaults = {leaf.path: leaf.default for leaf in fields.LEAVES if leaf.default is not None}
        layers = [_Layer(DEFAULT_SOURCE, defaults)]
        self._base_warnings: list[Any] = []
        if mesh is not None:
            source = {"layer": "mesh", "kind": "ConfigMap", "namespace": mesh.namespace,
                      "name": mesh.name}
            read = ann.read_proxy_config(mesh.default_config, "defaultConfig")
            layers.append(_Layer(source, read.values))
            self._base_warnings += [
                warnings.invalid_input("InvalidMeshConfig", f"{mesh.namespace}/{mesh.name} {where}",
                                       reason) for where, reason in read.invalid]
        if self.global_configs:
            layers.append(_Layer(config_source("global", self.global_configs[0]),
                                 self.global_configs[0].values))
            self._base_warnings += _conflicts("GlobalConflict", "global", self.global_configs)
        return layers

    def resolve(self, target: Target) -> Effective:
        """The SPEC section 4 EffectiveSidecarConfig of one target."""
        stack = self._stack_for(target)
        layer = ann.read_annotations(target.annotations)
        fields_ = stack.with_annotations(layer, self._annotation_sources)
        found = list(stack.warnings)
        found += self._workload_conflicts(target)
        found += warnings.partial_resources(ann.present_resource_annotations(target.annotations))
        found += [warnings.invalid_input("InvalidAnnotation", where, reason)
                  for where, reason in layer.invalid]
        found += warnings.value_warnings({k: f["value"] for k, f in fields_.items()},
                                         target.grace_period)
        return {"apiVersion": API_VERSION, "kind": "EffectiveSidecarConfig",
                "target": {"kind": target.kind, "namespace": target.namespace,
                           "name": target.name},
                "precedence": self.precedence, "fields": fields_, "warnings": found}

    def matching_workload_configs(self, target: Target) -> list[SidecarProxyConfig]:
        return [c for c in self.workload_configs.get(target.namespace, ())
                if c.matches(target.labels)]

    def namespace_config(self, namespace: str) -> SidecarProxyConfig | None:
        candidates = self.namespace_configs.get(namespace)
        return candidates[0] if candidates else None

    def _stack_for(self, target: Target) -> _Stack:
        workload = self.matching_workload_configs(target)
        namespace = self.namespace_config(target.namespace)
        key = (namespace.ref if namespace else None, workload[0].ref if workload else None)
        stack = self._stacks.get(key)
        if stack is None:
            stack = self._stacks[key] = self._build_stack(
                target.namespace, namespace, workload[0] if workload else None)
        return stack

    def _build_stack(self, namespace_name: str, namespace: SidecarProxyConfig | None,
                     workload: SidecarProxyConfig | None) -> _Stack:
        below = list(self._base)
        found = list(self._base_warnings)
        if namespace is not None:
            below.append(_Layer(config_source("namespace", namespace), namespace.values))
            found += _conflicts("NamespaceConflict", "namespace",
                                self.namespace_configs[namespace_name])
        above = None
        if workload is not None:
            layer = _Layer(config_source("workload", workload), workload.values)
            if self.precedence == WORKLOAD_FIRST:
                above = layer
            else:
                below.append(layer)
        return _Stack(below, above, found)

    def _workload_conflicts(self, target: Target) -> list[Any]:
        matching = self.matching_workload_configs(target)
        return _conflicts("WorkloadConflict", "workload", matching)


def _conflicts(code: str, layer: str, candidates: Sequence[SidecarProxyConfig]) -> list[Any]:
    if len(candidates) < 2:
        return []
    return [warnings.conflict(code, layer, candidates[0].ref, [c.ref for c in candidates[1:]])]
