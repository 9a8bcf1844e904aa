"""Resolution: every target's effective sidecar config, leaf by leaf, with provenance.

Pure and free of I/O. Layers, lowest first (SPEC section 2):
  annotation-first: default < mesh < global < namespace < workload < annotation
  workload-first:   default < mesh < global < namespace < annotation < workload
Istio's own ProxyConfig objects sit where the running sidecar ends up using them
(`proxyconfigs.py`, docs/precedence.md): istio-global and istio-namespace above mesh; the
istio-workload layer above everything for injection-time leaves (proxyMetadata), just
below meshcfg's global layer for run-time ones (concurrency).

Everything but the annotation layer depends only on which objects win for the target, so
that part ("a stack") is built once per combination of winners and shared; per target
only the annotation layer and the value warnings are added.
"""

from __future__ import annotations

import dataclasses
import gc
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import agentstats, blocked, fields, hold, warnings
from . import annotations as ann
from . import proxyconfigs as pcs
from . import revisions as revs
from .effective import Effective, Entry, Field, Finding, Source
from .model import API_VERSION, InjectorValues, MeshConfig, SidecarProxyConfig, Target

ANNOTATION_FIRST = "annotation-first"
WORKLOAD_FIRST = "workload-first"
LAYER_ORDER = {
    ANNOTATION_FIRST: ("default", "mesh", "global", "namespace", "workload", "annotation"),
    WORKLOAD_FIRST: ("default", "mesh", "global", "namespace", "annotation", "workload"),
}
DEFAULT_SOURCE: Source = {"layer": "default"}
CONCURRENCY = "proxy.concurrency"
CPU_LIMIT = "proxy.resources.limits.cpu"


def config_source(layer: str, config: SidecarProxyConfig) -> Source:
    return {"layer": layer, "kind": "SidecarProxyConfig", "namespace": config.namespace,
            "name": config.name}


@dataclass(frozen=True)
class _Layer:
    source: Source
    values: Mapping[str, Any]


def _chains(layers: Sequence[_Layer], base: Mapping[str, list[Entry]] | None = None
            ) -> dict[str, list[Entry]]:
    """Per leaf, the entries of these layers (on top of base), highest first."""
    chains = dict(base) if base else {}
    for layer in layers:
        for leaf, value in layer.values.items():
            chains[leaf] = [{"value": value, "source": layer.source}, *chains.get(leaf, ())]
    return chains


def _field(chain: list[Entry]) -> Field:
    return {"value": chain[0]["value"], "source": chain[0]["source"], "overridden": chain[1:]}


class _Stack:
    """The resolved layers of one combination of winning objects, annotation slot open."""

    def __init__(self, below_desc: dict[str, list[Entry]], above: Sequence[_Layer],
                 base_fields: Mapping[str, Field], changed: set[str], found: list[Finding],
                 istio_workload: pcs.IstioProxyConfig | None = None):
        self.below_desc = below_desc
        self.above = above      # layers above the annotation, lowest first
        self.warnings = found
        self.istio_workload = istio_workload
        for layer in above:
            changed = changed | set(layer.values)
        self.fields = dict(base_fields)
        for leaf in changed:
            self.fields[leaf] = self._field(leaf, None)
        if len(self.fields) != len(base_fields):
            self.fields = {leaf: self.fields[leaf] for leaf in sorted(self.fields, key=fields.sort_key)}

    def _field(self, leaf: str, annotation: Entry | None) -> Field:
        chain = self.below_desc.get(leaf, [])
        if annotation is not None:
            chain = [annotation, *chain]
        for layer in self.above:
            if leaf in layer.values:
                chain = [{"value": layer.values[leaf], "source": layer.source}, *chain]
        return _field(chain)

    def with_annotations(self, layer: ann.LayerInput, sources: dict[str, Source]
                         ) -> dict[str, Field]:
        result = dict(self.fields)
        if not layer.values:
            return result
        for leaf, value in layer.values.items():
            key = layer.keys[leaf]
            source = sources.get(key)
            if source is None:
                source = sources[key] = {"layer": "annotation", "annotation": key}
            result[leaf] = self._field(leaf, {"value": value, "source": source})
        if len(result) != len(self.fields):
            result = {leaf: result[leaf] for leaf in sorted(result, key=fields.sort_key)}
        return result


@dataclass(frozen=True)
class Revisions:
    """What decides a pod's revision and that revision's own inputs (SPEC section 2)."""

    meshes: Mapping[str, MeshConfig] = dataclasses.field(default_factory=dict)   # istio-<rev>
    injectors: Mapping[str, InjectorValues] = dataclasses.field(default_factory=dict)
    namespace_labels: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class _Base:
    desc: dict[str, list[Entry]]
    fields: dict[str, Field]
    warnings: list[Finding]


class Resolver:
    """Resolves targets against one set of SidecarProxyConfigs and one mesh config."""

    def __init__(self, configs: Iterable[SidecarProxyConfig], mesh: MeshConfig | None = None,
                 root_namespace: str | None = None, precedence: str | None = None,
                 istio_namespace: str = "istio-system", injector: InjectorValues | None = None,
                 revisions: Revisions | None = None,
                 proxy_configs: Iterable[pcs.IstioProxyConfig] = ()):
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
        self.istio = pcs.Scopes.of(proxy_configs, self.root_namespace)
        winner = self.global_configs[0] if self.global_configs else None
        self.precedence = precedence or (winner.precedence if winner else None) or ANNOTATION_FIRST
        self._revisions = revisions or Revisions()
        self._inputs = {revs.DEFAULT: (mesh, injector)}
        for name in set(self._revisions.meshes) | set(self._revisions.injectors):
            self._inputs[name] = (self._revisions.meshes.get(name, mesh),
                                  self._revisions.injectors.get(name, injector))
        self._bases: dict[str, _Base] = {}
        self._stacks: dict[tuple[str | None, ...], _Stack] = {}
        self._annotation_sources: dict[str, Source] = {}
        self._derived: dict[tuple[int, Any], tuple[Field, Field]] = {}
        self._agent_stats: dict[tuple[int, int], tuple[Field | None, Field, Field | None]] = {}

    def _base(self, revision: str) -> _Base:
        """The default, mesh and istio-global layers of a revision (its own ConfigMaps;
        the default revision's where it has none)."""
        inputs = revision if revision in self._inputs else revs.DEFAULT
        if not self.istio.revisioned:
            revision = inputs   # no ProxyConfig is labelled for a revision: share the base
        base = self._bases.get(revision)
        if base is None:
            found: list[Finding] = []
            desc = _chains(self._base_layers(*self._inputs[inputs], found, revision))
            base = self._bases[revision] = _Base(
                desc, {leaf: _field(desc[leaf]) for leaf in sorted(desc, key=fields.sort_key)},
                found)
        return base

    def revision(self, target: Target) -> str:
        revisions = self._revisions
        return revs.revision_of(target.annotations, target.labels,
                                revisions.namespace_labels.get(target.namespace, {}),
                                revisions.tags)

    def _base_layers(self, mesh: MeshConfig | None, injector: InjectorValues | None,
                     found: list[Finding], revision: str) -> list[_Layer]:
        layers = default_layers(injector, found)
        if mesh is not None:
            source: Source = {"layer": "mesh", "kind": "ConfigMap", "namespace": mesh.namespace,
                      "name": mesh.name}
            read = ann.read_proxy_config(mesh.default_config, "defaultConfig")
            layers.append(_Layer(source, read.values))
            found += [
                warnings.invalid_input("InvalidMeshConfig", f"{mesh.namespace}/{mesh.name} {where}",
                                       reason) for where, reason in read.invalid]
        istio_global = self.istio.for_global(revision)
        if istio_global:
            layers.append(_istio_layer(pcs.GLOBAL, istio_global[0]))
            found += pcs.conflicts(pcs.GLOBAL, istio_global)
            found += pcs.invalid_values(istio_global[:1])
        return layers

    def resolve_all(self, targets: Iterable[Target]) -> list[Effective]:
        """Resolve many targets. Resolution makes no reference cycles, so the cyclic
        garbage collector is paused meanwhile: on large lists it only costs time."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return [self.resolve(t) for t in targets]
        finally:
            if was_enabled:
                gc.enable()

    def resolve(self, target: Target) -> Effective:
        """The SPEC section 4 EffectiveSidecarConfig of one target."""
        workload = self.matching_workload_configs(target)
        revision = self.revision(target) if len(self._inputs) > 1 or self.istio.revisioned \
            else revs.DEFAULT
        istio_workload = self.istio.for_workload(target.namespace, target.labels, revision)
        stack = self._stack_for(target, revision, workload, istio_workload[:1])
        layer = ann.read_annotations(target.annotations, target.synced_keys)
        fields_ = stack.with_annotations(layer, self._annotation_sources)
        self._derive_concurrency(fields_)
        fields_ = self._add_agent_stats(fields_)
        found = list(stack.warnings)
        if len(workload) > 1:
            found += _conflicts("WorkloadConflict", "workload", workload)
        found += pcs.conflicts(pcs.WORKLOAD, istio_workload)
        if layer.resource_keys:
            found += warnings.partial_resources(layer.resource_keys)
        found += [warnings.invalid_input("InvalidAnnotation", where, reason)
                  for where, reason in layer.invalid]
        found += hold.force(fields_, hold.native_sidecar(target.annotations, target.pod_spec))
        if target.annotations:
            found += blocked.findings(fields_, ann.user_keys(target.annotations,
                                                             target.synced_keys),
                                      frozenset(layer.keys.values()))
        found += warnings.value_warnings(fields_, target.grace_period)
        found += warnings.untrusted_code(fields_, self.root_namespace)
        found += agentstats.stats_warnings(fields_, target.annotations, target.synced_keys)
        found += pcs.overridden_at_runtime(fields_, stack.istio_workload)
        if target.kind == "Pod" and target.pod_spec:
            found += warnings.stale_sidecar(fields_, target.pod_spec, target.annotations)
        return {"apiVersion": API_VERSION, "kind": "EffectiveSidecarConfig",
                "target": {"kind": target.kind, "namespace": target.namespace,
                           "name": target.name},
                "precedence": self.precedence, "fields": fields_, "warnings": found}

    def _derive_concurrency(self, fields_: dict[str, Field]) -> None:
        """Where nobody set concurrency, pilot-agent derives it from the CPU limit: the
        default layer's value depends on the target's own effective limit."""
        field = fields_[CONCURRENCY]
        limit = fields_.get(CPU_LIMIT)
        key = (id(field), None if limit is None else limit["value"])
        cached = self._derived.get(key)
        if cached is None:   # the field is kept in the cache, so its id stays unique
            cached = self._derived[key] = (field, with_derived_concurrency(field, key[1]))
        fields_[CONCURRENCY] = cached[1]

    def _add_agent_stats(self, fields_: dict[str, Field]) -> dict[str, Field]:
        """The drain agent's stats merged into the effective matcher (one shared field per
        combination, as the stacks share theirs)."""
        agent = fields_.get(agentstats.AGENT)
        if agent is None or not agentstats.agent_enabled(agent):
            return fields_
        matcher = fields_.get(agentstats.MATCHER)
        key = (id(matcher), id(agent))
        cached = self._agent_stats.get(key)
        if cached is None:   # the fields are kept in the cache, so their ids stay unique
            cached = self._agent_stats[key] = (matcher, agent,
                                               agentstats.with_agent_field(matcher, agent))
        merged = cached[2]
        if merged is None or merged is matcher:
            return fields_
        fields_[agentstats.MATCHER] = merged
        if matcher is None:
            return {leaf: fields_[leaf] for leaf in sorted(fields_, key=fields.sort_key)}
        return fields_

    def matching_workload_configs(self, target: Target) -> list[SidecarProxyConfig]:
        return [c for c in self.workload_configs.get(target.namespace, ())
                if c.matches(target.labels)]

    def namespace_config(self, namespace: str) -> SidecarProxyConfig | None:
        candidates = self.namespace_configs.get(namespace)
        return candidates[0] if candidates else None

    def _stack_for(self, target: Target, revision: str, workload: list[SidecarProxyConfig],
                   istio_workload: list[pcs.IstioProxyConfig]) -> _Stack:
        namespace = self.namespace_config(target.namespace)
        istio_namespace = self.istio.for_namespace(target.namespace, revision)
        key = (revision, namespace.ref if namespace else None,
               workload[0].ref if workload else None,
               istio_namespace[0].ref if istio_namespace else None,
               istio_workload[0].ref if istio_workload else None)
        stack = self._stacks.get(key)
        if stack is None:
            stack = self._stacks[key] = self._build_stack(
                self._base(revision), target.namespace, namespace,
                workload[0] if workload else None, istio_namespace,
                istio_workload[0] if istio_workload else None)
        return stack

    def _build_stack(self, base: _Base, namespace_name: str,
                     namespace: SidecarProxyConfig | None,
                     workload: SidecarProxyConfig | None,
                     istio_namespace: list[pcs.IstioProxyConfig],
                     istio_workload: pcs.IstioProxyConfig | None) -> _Stack:
        below: list[_Layer] = []     # lowest first
        above: list[_Layer] = []     # above the annotation, lowest first
        found = list(base.warnings)
        if istio_namespace:
            below.append(_istio_layer(pcs.NAMESPACE, istio_namespace[0]))
        if istio_workload is not None:
            # run-time leaves below meshcfg's layers, injection-time ones above them all
            runtime, injection = _split(_istio_layer(pcs.WORKLOAD, istio_workload))
            below.append(runtime)
            above.append(injection)
        if self.global_configs:
            below.append(_Layer(config_source("global", self.global_configs[0]),
                                self.global_configs[0].values))
            found += _conflicts("GlobalConflict", "global", self.global_configs)
        found += pcs.conflicts(pcs.NAMESPACE, istio_namespace)
        found += pcs.invalid_values(istio_namespace[:1])
        if namespace is not None:
            below.append(_Layer(config_source("namespace", namespace), namespace.values))
            found += _conflicts("NamespaceConflict", "namespace",
                                self.namespace_configs[namespace_name])
        if istio_workload is not None:
            found += pcs.invalid_values([istio_workload])
        if workload is not None:
            layer = _Layer(config_source("workload", workload), workload.values)
            if self.precedence == WORKLOAD_FIRST:
                above.insert(0, layer)
            else:
                below.append(layer)
        changed = {leaf for layer in below for leaf in layer.values}
        return _Stack(_chains(below, base.desc), above, base.fields, changed, found,
                      istio_workload)


def _istio_layer(layer: str, config: pcs.IstioProxyConfig) -> _Layer:
    return _Layer(config.source(layer), config.values)


def _split(layer: _Layer) -> tuple[_Layer, _Layer]:
    """(run-time leaves, injection-time leaves) of a layer."""
    runtime = {k: v for k, v in layer.values.items() if not pcs.injection_time(k)}
    injection = {k: v for k, v in layer.values.items() if pcs.injection_time(k)}
    return _Layer(layer.source, runtime), _Layer(layer.source, injection)


def _conflicts(code: str, layer: str, candidates: Sequence[SidecarProxyConfig]) -> list[Finding]:
    if len(candidates) < 2:
        return []
    return [warnings.conflict(code, layer, candidates[0].ref, [c.ref for c in candidates[1:]])]


def default_layers(injector: InjectorValues | None, found: list[Finding]) -> list[_Layer]:
    """The default layer: the injector's values where it sets a leaf (source: its
    ConfigMap), else the pinned Istio's built-in values (source: {"layer": "default"})."""
    from_values: Mapping[str, Any] = {}
    layers = []
    if injector is not None:
        source: Source = {"layer": "default", "kind": "ConfigMap",
                          "namespace": injector.namespace, "name": injector.name}
        read = ann.read_injector_values(injector.values, "values")
        from_values = read.values
        layers.append(_Layer(source, from_values))
        found += [warnings.invalid_input("InvalidInjectorValues",
                                         f"{injector.namespace}/{injector.name} {where}", reason)
                  for where, reason in read.invalid]
    builtin = {leaf.path: leaf.default for leaf in fields.LEAVES
               if leaf.default is not None and leaf.path not in from_values}
    return [_Layer(DEFAULT_SOURCE, builtin), *layers]


def with_derived_concurrency(field: Field, cpu_limit: Any) -> Field:
    """The field with the derived default (a placeholder until the limit is known) filled in,
    as the winner or as the lowest overridden entry."""
    derived = fields.derive_concurrency(None if cpu_limit is None else str(cpu_limit))
    if field["value"] is fields.DERIVED_CONCURRENCY:
        return {"value": derived, "source": field["source"], "overridden": []}
    overridden = field["overridden"]
    if overridden and overridden[-1]["value"] is fields.DERIVED_CONCURRENCY:
        lowest: Entry = {"value": derived, "source": overridden[-1]["source"]}
        return {"value": field["value"], "source": field["source"],
                "overridden": [*overridden[:-1], lowest]}
    return field
