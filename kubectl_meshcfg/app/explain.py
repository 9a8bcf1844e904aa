"""explain and lint: the targets asked for, resolved."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.effective import Effective
from ..core.inventory import TargetQuery, parse_target_args, select_targets
from ..core.labels import parse_selector
from ..core.model import Target
from ..core.resolve import Resolver
from .scope import Scope, load, make_resolver, query_namespace


@dataclass(frozen=True)
class TargetOptions:
    """TARGET (TYPE/NAME, TYPE NAME or TYPE), -l and --precedence."""

    target: tuple[str, ...] = ()
    selector: str | None = None
    precedence: str | None = None


@dataclass(frozen=True)
class Chosen:
    """The targets a command was asked about, and the resolver to resolve them with."""

    targets: list[Target]
    resolver: Resolver
    named: bool                 # a single TYPE/NAME was asked for


def choose_targets(scope: Scope, options: TargetOptions) -> Chosen:
    kind, name = parse_target_args(options.target)
    query = TargetQuery(kind=kind, name=name, namespace=query_namespace(scope),
                        selector=parse_selector(options.selector) if options.selector else None)
    inventory = load(scope, query)
    return Chosen(select_targets(inventory, query),
                  make_resolver(inventory, scope, options.precedence), name is not None)


@dataclass(frozen=True)
class Explained:
    results: list[Effective]
    named: bool


def explain(scope: Scope, options: TargetOptions) -> Explained:
    chosen = choose_targets(scope, options)
    return Explained(chosen.resolver.resolve_all(chosen.targets), chosen.named)


def lint(scope: Scope, options: TargetOptions) -> Explained:
    """As explain; the command reports the warnings (and exits 3 when there are any)."""
    return explain(scope, options)
