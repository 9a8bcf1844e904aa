"""restart: roll exactly the workloads that have a pod with a stale sidecar, stamping only
`kubectl.kubernetes.io/restartedAt` (as `kubectl rollout restart` does)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.inventory import TargetQuery
from ..core.labels import parse_selector
from ..core.restarts import RestartPlan, plan
from ..kube import writes
from .scope import Scope, load, make_resolver, query_namespace


@dataclass(frozen=True)
class RestartOptions:
    selector: str | None = None
    precedence: str | None = None
    dry_run: str = "none"


def restart(scope: Scope, options: RestartOptions) -> RestartPlan:
    query = TargetQuery(namespace=query_namespace(scope))
    inventory = load(scope, query)
    resolver = make_resolver(inventory, scope, options.precedence)
    selector = parse_selector(options.selector) if options.selector else None
    pods = [t for t in inventory.targets if t.kind == "Pod"
            and (query.namespace is None or t.namespace == query.namespace)
            and (selector is None or selector.matches(t.labels))]
    result = plan(inventory.targets, [(pod, resolver.resolve(pod)) for pod in pods])
    if options.dry_run == "none" and not scope.local:
        for workload in result.workloads:
            writes.restart_workload(scope.api, workload.kind, workload.namespace, workload.name)
    return result
