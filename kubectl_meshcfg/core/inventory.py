"""What one invocation works on: configs, targets and the mesh config, wherever they came
from (local files or the cluster), and how targets are picked from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import kinds
from .errors import NotFound, UsageError
from .labels import Selector
from .model import InjectorValues, MeshConfig, SidecarProxyConfig, Target
from .proxyconfigs import IstioProxyConfig


@dataclass
class Inventory:
    configs: list[SidecarProxyConfig] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    mesh: MeshConfig | None = None
    injector: InjectorValues | None = None     # the default revision's injector values
    # other revisions' ConfigMaps (istio-<rev>, istio-sidecar-injector-<rev>), by revision
    revision_meshes: dict[str, MeshConfig] = field(default_factory=dict)
    revision_injectors: dict[str, InjectorValues] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)           # revision tag -> revision
    proxy_configs: list[IstioProxyConfig] = field(default_factory=list)   # Istio's own


@dataclass(frozen=True)
class TargetQuery:
    """Which targets the user asked for."""

    kind: str | None = None           # canonical Kind, e.g. "Deployment"; None = any
    name: str | None = None
    namespace: str | None = None      # None = all namespaces
    selector: Selector | None = None


def parse_target_args(args: tuple[str, ...]) -> list[tuple[str | None, str | None]]:
    """TARGET arguments as kubectl takes them: `TYPE/NAME...`, `TYPE NAME...` or `TYPE`,
    → [(Kind, name)], one per name ([(Kind, None)] for every object of a kind)."""
    if not args:
        return [(None, None)]
    if any("/" in arg for arg in args):
        if not all("/" in arg for arg in args):
            raise UsageError(f"expected TYPE/NAME... or TYPE NAME..., got {' '.join(args)!r} "
                             "(no separate TYPE with TYPE/NAME arguments)")
        return [_pair(*arg.split("/", 1)) for arg in args]
    kind_text, *names = args
    return [_pair(kind_text, name) for name in names] or [_pair(kind_text, "")]


def _pair(kind_text: str, name: str) -> tuple[str | None, str | None]:
    kind = kinds.lookup(kind_text)
    if kind is None:
        raise UsageError(f"unknown target type {kind_text!r} (one of {kinds.describe_names()}, "
                         "a short name, or NAME.GROUP such as deployment.apps)")
    if "/" in name:
        raise UsageError(f"expected TYPE/NAME, got {kind_text}/{name!r}")
    return kind.name, name or None


def top_level(targets: Iterable[Target]) -> list[Target]:
    """Workloads and the pods no workload owns; owned objects fold into their owner."""
    present = {(t.namespace, t.kind, t.name) for t in targets}
    return [t for t in targets if not _owned(t, present)]


def _owned(target: Target, present: set[tuple[str, str, str]]) -> bool:
    if target.owner is None or target.owner[0] not in kinds.BY_NAME[target.kind].owners:
        return False
    return (target.namespace, *target.owner) in present


def select_targets(inventory: Inventory, query: TargetQuery) -> list[Target]:
    candidates = [t for t in inventory.targets
                  if query.namespace is None or t.namespace == query.namespace]
    if query.kind is None and query.name is None:
        chosen = top_level(candidates)
    else:
        chosen = [t for t in candidates if (query.kind is None or t.kind == query.kind)
                  and (query.name is None or t.name == query.name)]
    if query.selector is not None:
        chosen = [t for t in chosen if query.selector.matches(t.labels)]
    if query.name is not None and not chosen:
        where = f" in namespace {query.namespace}" if query.namespace else ""
        raise NotFound(f"{(query.kind or 'target').lower()}/{query.name} not found{where}")
    return sorted(chosen, key=lambda t: (t.namespace, t.kind, t.name))


def pods_matched(config: SidecarProxyConfig, targets: Iterable[Target],
                 root_namespace: str) -> list[Target]:
    """Pods a config applies to (as winner or loser of its layer)."""
    pods = [t for t in targets if t.kind == "Pod"]
    if config.selector is not None:
        return [t for t in pods if t.namespace == config.namespace and config.matches(t.labels)]
    if config.namespace == root_namespace:
        return pods
    return [t for t in pods if t.namespace == config.namespace]


def scope_of(config: SidecarProxyConfig, root_namespace: str) -> str:
    if config.selector is not None:
        return "workload"
    return "global" if config.namespace == root_namespace else "namespace"


def competitors(config: SidecarProxyConfig, configs: Iterable[SidecarProxyConfig],
                root_namespace: str) -> list[str]:
    """Other objects that compete with this one for a layer of some (possible) target.
    Workload objects compete when one label set could match both selectors (a target
    both match already shows that their selectors overlap)."""
    scope = scope_of(config, root_namespace)
    return sorted(c.ref for c in configs
                  if c is not config and c.namespace == config.namespace
                  and scope_of(c, root_namespace) == scope
                  and (scope != "workload" or _selectors_overlap(config.selector, c.selector)))


def _selectors_overlap(a: Mapping[str, str] | None, b: Mapping[str, str] | None) -> bool:
    """Whether some label set could match both selectors."""
    if a is None or b is None:
        return False
    return all(b[k] == v for k, v in a.items() if k in b)
