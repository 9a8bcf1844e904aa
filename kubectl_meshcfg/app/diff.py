"""diff: which targets' effective config would change if CHANGE were applied."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..core import model
from ..core.diffing import affected_namespaces, compare, overlay
from ..core.errors import UsageError
from ..core.inventory import Inventory
from ..kube import writes
from .loader import load_inventory
from .scope import Scope, current_namespace, load_live, make_resolver


@dataclass(frozen=True)
class DiffOptions:
    changes: tuple[str, ...]
    base: tuple[str, ...] = ()          # with --local: the current state
    recursive: bool = False
    precedence: str | None = None
    field_manager: str = "kubectl-meshcfg"     # live: whose apply is predicted
    force_conflicts: bool = False


def diff(scope: Scope, options: DiffOptions) -> dict[str, Any]:
    """The SidecarConfigDiff object (SPEC: exit 3 when it has items)."""
    if options.base and not scope.local:
        raise UsageError("--base needs --local (live, the current state is the cluster)")
    if scope.local and not options.base:
        raise UsageError("--local needs --base PATH (the current state)")
    default_ns = scope.namespace or ("default" if scope.local else current_namespace(scope))
    change = load_inventory(options.changes, options.recursive, default_ns, scope.istio_namespace)
    if scope.local:
        before = load_inventory(options.base, options.recursive, default_ns,
                                scope.istio_namespace)
    else:
        before = _live_before(scope, change)
        change = _as_applied(scope, change, options)
    after = overlay(before, change)
    return compare(before, after, make_resolver(before, scope, options.precedence).resolve,
                   make_resolver(after, scope, options.precedence).resolve, None)


def _as_applied(scope: Scope, change: Inventory, options: DiffOptions) -> Inventory:
    """The change as the API server would store it: a server-side apply dry run of each
    object, so fields another manager owns (client-side apply's, say) stay as they are,
    exactly as `apply` would leave them; a conflict is the error apply would give."""
    applied = []
    for config in change.configs:
        stored = writes.server_side_apply(scope.api, config.raw, config.namespace, config.name,
                                          options.field_manager, options.force_conflicts,
                                          dry_run=True)
        parsed = model.parse_config(stored, config.origin, config.namespace, config.load_order)
        applied.append(dataclasses.replace(parsed, raw=config.raw))
    return dataclasses.replace(change, configs=applied)


def _live_before(scope: Scope, change: Inventory) -> Inventory:
    """Read only the namespaces the change can reach (all of them for a global object or
    a mesh config change)."""
    if scope.all_namespaces:
        return load_live(scope)
    guess = scope.root_namespace or scope.istio_namespace
    reach = affected_namespaces(change, guess)
    if reach is not None:
        before = load_live(scope, namespaces=reach)
        root = make_resolver(before, scope, None).root_namespace
        if root == guess:
            return before
        reach = affected_namespaces(change, root)
        if reach is not None:
            return load_live(scope, namespaces=reach)
    return load_live(scope.replace(all_namespaces=True))
