"""sync: render every workload in scope and server-side apply those whose rendered config
differs, each with meshcfg's own field manager, so that stock Istio injects it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..core import kinds
from ..core import render as rendering
from ..core.errors import MeshcfgError, UsageError
from ..core.inventory import TargetQuery, select_targets
from ..core.labels import parse_selector
from ..core.model import SYNC_FIELD_MANAGER, Target
from ..core.syncplan import WorkloadPlan, plan
from ..kube import writes
from ..kube.transport import Api
from .scope import Scope, load, make_resolver, query_namespace


@dataclass(frozen=True)
class SyncOptions:
    selector: str | None = None
    precedence: str | None = None
    dry_run: str = "none"               # none | client | server
    force_conflicts: bool = False
    restart: bool = False
    agent_image: str | None = None


@dataclass
class Outcome:
    planned: WorkloadPlan
    error: str | None = None


@dataclass
class SyncReport:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[tuple[Target, str]] = field(default_factory=list)
    unchanged: int = 0
    notes: list[tuple[Target, str]] = field(default_factory=list)   # what render cannot do

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o.error)


def sync(scope: Scope, options: SyncOptions) -> SyncReport:
    if scope.local:
        raise UsageError("sync writes to the cluster; use render --local to see the result offline")
    query = TargetQuery(namespace=query_namespace(scope),
                        selector=parse_selector(options.selector) if options.selector else None)
    inventory = load(scope)
    inventory.targets = select_targets(inventory, query)
    resolver = make_resolver(inventory, scope, options.precedence)
    planned, skipped = plan(inventory, resolver,
                            options.agent_image or rendering.DEFAULT_AGENT_IMAGE)
    outcomes = execute(scope.api, planned, options)
    notes = [(p.target, note) for p in planned for note in p.rendered.notes]
    return SyncReport(outcomes, skipped,
                      sum(1 for p in planned if not p.changed and not p.refused), notes)


def execute(api: Api, planned: list[WorkloadPlan], options: SyncOptions) -> list[Outcome]:
    """Apply each changed workload; a failure (a conflict, say) is reported and the others
    still go ahead."""
    outcomes = []
    for item in planned:
        if item.refused:
            outcomes.append(Outcome(item, "refused: " + "; ".join(item.refused)))
            continue
        if not item.changed:
            continue
        try:
            if options.dry_run != "client":
                _apply(api, item, options)
            outcomes.append(Outcome(item))
        except MeshcfgError as error:
            outcomes.append(Outcome(item, str(error)))
    return outcomes


def _apply(api: Api, item: WorkloadPlan, options: SyncOptions) -> None:
    target = item.target
    writes.apply_workload(api, target.kind, target.namespace, target.name,
                          item.rendered.apply_config, SYNC_FIELD_MANAGER,
                          options.force_conflicts, options.dry_run == "server")
    if options.restart and options.dry_run == "none":
        writes.restart_workload(api, target.kind, target.namespace, target.name)


def describe(target: Target) -> str:
    kind = kinds.BY_NAME[target.kind]
    group = f".{kind.group}" if kind.group else ""
    return f"{target.kind.lower()}{group}/{target.name} ({target.namespace})"


def short(value: Any) -> str:
    if value is None:
        return "<unset>"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = text.replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."
