"""Which workloads to roll: those with a pod whose injected sidecar is stale (StaleSidecar).
Config changes reach only new pods in admission mode; a restart makes the new pods. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import kinds
from .effective import Effective
from .model import Target

Key = tuple[str, str, str]      # namespace, kind, name


@dataclass
class RestartPlan:
    workloads: list[Target] = field(default_factory=list)
    stale_pods: dict[Key, list[str]] = field(default_factory=dict)   # workload -> pod names
    skipped: list[tuple[Target, str]] = field(default_factory=list)  # stale, cannot roll


def _key(target: Target) -> Key:
    return (target.namespace, target.kind, target.name)


def top_owner(pod: Target, by_key: Mapping[Key, Target]) -> Target:
    """The outermost controller present: Pod -> ReplicaSet -> Deployment, Pod -> StatefulSet."""
    current = pod
    while current.owner is not None:
        owner = by_key.get((current.namespace, *current.owner))
        if owner is None:
            break
        current = owner
    return current


def plan(targets: Iterable[Target], resolved: Iterable[tuple[Target, Effective]]) -> RestartPlan:
    by_key = {_key(t): t for t in targets}
    result = RestartPlan()
    for pod, effective in resolved:
        if pod.kind != "Pod" or not any(w["code"] == "StaleSidecar"
                                        for w in effective["warnings"]):
            continue
        owner = top_owner(pod, by_key)
        if kinds.BY_NAME[owner.kind].rollout != kinds.ROLLOUT_TEMPLATE:
            result.skipped.append((pod, kinds.BY_NAME[owner.kind].why_not_synced
                                   or f"a {owner.kind} cannot be restarted"))
            continue
        if _key(owner) not in result.stale_pods:
            result.workloads.append(owner)
        result.stale_pods.setdefault(_key(owner), []).append(pod.name)
    return result
