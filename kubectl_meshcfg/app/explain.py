"""explain and lint: the targets asked for, resolved."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import admission
from ..core import annotations as ann
from ..core.effective import Effective
from ..core.inventory import TargetQuery, parse_target_args, select_targets
from ..core.labels import parse_selector
from ..core.model import Target
from ..core.resolve import Resolver
from ..kube import admission as kube_admission
from ..kube.errors import CrdMissing, Forbidden
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
    """Every target asked for, once each, in the order asked (kubectl's order for
    `explain deploy/a pod/b`); one query per TYPE/NAME, all read in one load."""
    pairs = parse_target_args(options.target)
    selector = parse_selector(options.selector) if options.selector else None
    namespace = query_namespace(scope)
    queries = [TargetQuery(kind, name, namespace, selector) for kind, name in pairs]
    inventory = load(scope, queries[0] if len(queries) == 1 else _covering(queries))
    chosen: dict[tuple[str, str, str], Target] = {}
    for query in queries:
        for target in select_targets(inventory, query):
            chosen.setdefault((target.namespace, target.kind, target.name), target)
    named = len(pairs) == 1 and pairs[0][1] is not None
    return Chosen(list(chosen.values()), make_resolver(inventory, scope, options.precedence),
                  named)


def _covering(queries: list[TargetQuery]) -> TargetQuery:
    """One query whose load holds every query's targets: their kind when they share one."""
    kinds = {q.kind for q in queries}
    kind = kinds.pop() if len(kinds) == 1 else None
    return TargetQuery(kind=kind, namespace=queries[0].namespace, selector=queries[0].selector)


@dataclass(frozen=True)
class Explained:
    results: list[Effective]
    named: bool


def explain(scope: Scope, options: TargetOptions) -> Explained:
    chosen = choose_targets(scope, options)
    return Explained(chosen.resolver.resolve_all(chosen.targets), chosen.named)


def lint(scope: Scope, options: TargetOptions) -> Explained:
    """As explain; the command reports the warnings (and exits 3 when there are any). Where
    the admission policy is installed, also the workloads it cannot serve."""
    chosen = choose_targets(scope, options)
    results = chosen.resolver.resolve_all(chosen.targets)
    if not scope.local and admission_installed(scope):
        for target, result in zip(chosen.targets, results, strict=True):
            finding = admission.skipped(target)
            admitted = target.kind == "Pod" and ann.MANAGED_ANNOTATIONS in target.annotations
            if finding is not None and not admitted:
                result["warnings"].append(finding)
    return Explained(results, chosen.named)


def admission_installed(scope: Scope) -> bool:
    """Whether this cluster runs meshcfg's admission policy (a reader not allowed to see
    policies gets no admission warnings)."""
    try:
        return kube_admission.get_object(scope.api, admission.policy()) is not None
    except (Forbidden, CrdMissing):
        return False
