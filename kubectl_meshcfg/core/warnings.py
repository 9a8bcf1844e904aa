"""Warnings about an effective config: conflicts, traps, and what Istio would do anyway.

Each check is pure and looks only at resolved values, so results are cached on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from . import formats, trust
from .effective import Field, Finding
from .model import AGENT_RESERVE, DEFAULT_GRACE_SECONDS
from .staleness import running_values, stale_fields

# One-line fix suggestions shown under each warning in text output.
FIXES: dict[str, str] = {
    "WorkloadConflict": "give the selectors disjoint labels, or merge the objects into one",
    "NamespaceConflict": "keep one selector-less SidecarProxyConfig per namespace",
    "GlobalConflict": "keep one selector-less SidecarProxyConfig in the root namespace",
    "DrainExceedsGracePeriod": "raise terminationGracePeriodSeconds above the drain plus a margin, "
                               "or shorten lifecycle.terminationDrainDuration",
    "ConcurrencyMismatch": "set proxy.concurrency to the CPU limit in whole cores, or 0 to derive it",
    "RequestsExceedLimits": "lower the request or raise the limit; Kubernetes rejects the pod otherwise",
    "PartialResourceAnnotations": "set all four of proxyCPU, proxyMemory, proxyCPULimit, "
                                  "proxyMemoryLimit, or move them into a SidecarProxyConfig",
    "InvalidAnnotation": "correct or remove the annotation; Istio ignores or rejects it",
    "PortBothIncludedAndExcluded": "remove the port from one of the two lists",
    "InvalidMeshConfig": "correct defaultConfig in the istio ConfigMap",
    "PreStopAndDrainAgent": "set either lifecycle.preStop or lifecycle.drainAgent, not both",
    "PostStartReplacesHold": "drop the custom postStart, or chain `pilot-agent wait` in it",
    "DrainAgentWithoutBudget": "raise terminationGracePeriodSeconds to at least the longest "
                               "request + terminationDrainDuration + 2 s",
    "DrainAgentStatsFiltered": "add downstream_rq_active,downstream_cx_active to the pod's "
                               "statsInclusionSuffixes annotation, or move its proxy.istio.io/config "
                               "into a SidecarProxyConfig so render can merge them",
    "UntrustedCode": "move the hook or image into a SidecarProxyConfig in the mesh root namespace "
                     "(docs/security.md); sync refuses to render it",
    "AdmissionSkipsPod": "move what the annotation or container sets into a SidecarProxyConfig "
                         "and drop it from the pod template, or use kubectl meshcfg sync for it",
    "ProxyConfigConflict": "keep one Istio ProxyConfig per scope (or give workload selectors "
                           "disjoint labels)",
    "InvalidProxyConfig": "correct spec.environmentVariables of the Istio ProxyConfig",
    "ProxyConfigOverriddenAtRuntime": "set the value in one place: drop it from the workload "
                                      "ProxyConfig or from proxy.istio.io/config (and the "
                                      "SidecarProxyConfigs render writes into it)",
    "HoldForcedByInjectorValues": "set global.proxy.holdApplicationUntilProxyStarts to false "
                                  "in the injector's values (istioctl install --set values."
                                  "global.proxy.holdApplicationUntilProxyStarts=false) so the "
                                  "layers decide, or drop the false",
    "UserAnnotationBlocks": "move the object's own annotation into a SidecarProxyConfig (or "
                            "remove it) so that render and sync can deliver the value",
    "StaleSidecar": "run kubectl meshcfg sync, then restart the pod's workload "
                    "(kubectl rollout restart) so the injector applies the effective config",
}


def conflict(code: str, layer: str, winner: str, losers: list[str]) -> Finding:
    return {"code": code,
            "message": f"{len(losers) + 1} SidecarProxyConfigs compete for the {layer} layer; "
                       f"the oldest, {winner}, wins whole and {', '.join(losers)} "
                       f"{'is' if len(losers) == 1 else 'are'} ignored",
            "objects": [winner, *losers]}


def _value(field: Field | None) -> Any:
    return None if field is None else field["value"]


def _present(field: Field | None) -> bool:
    return field is not None


def _enabled(field: Field | None) -> bool:
    return bool(field and field["value"].get("enabled"))


def _truthy(field: Field | None) -> bool:
    return bool(field and field["value"])


def _set_by_someone(field: Field | None) -> Any:
    """The value unless it is Istio's default (a derived concurrency always matches)."""
    return None if field is None or field["source"]["layer"] == "default" else field["value"]


# The leaves value_warnings reads, each with what of its field the checks need (the
# checks and their cache see only that, by name).
WATCHED: dict[str, Callable[[Field | None], Any]] = {
    "lifecycle.terminationDrainDuration": _value, "proxy.concurrency": _set_by_someone,
    **{f"{c}.resources.{g}.{r}": _value for c in ("proxy", "init") for r in ("cpu", "memory")
       for g in ("requests", "limits")},
    **{f"traffic.{io}{d}Ports": _value for d in ("Inbound", "Outbound") for io in ("include", "exclude")},
    "lifecycle.preStop": _present, "lifecycle.drainAgent": _enabled,
    "lifecycle.holdApplicationUntilProxyStarts": _truthy, "lifecycle.postStart": _present,
}
# plain values are read inline (no call per leaf: this runs for every target)
_PLAIN = tuple(leaf for leaf, project in WATCHED.items() if project is _value)
_PROJECTED = tuple((leaf, project) for leaf, project in WATCHED.items() if project is not _value)
_KEY_ORDER = (*_PLAIN, *(leaf for leaf, _ in _PROJECTED))
Values = Mapping[str, Any]


def value_warnings(resolved: Mapping[str, Field], grace: int | None) -> list[Finding]:
    """Warnings that depend only on effective values (resolved: leaf -> {"value": ...})
    and the pod's grace period."""
    get = resolved.get
    plain = [get(leaf) for leaf in _PLAIN]
    key = (*[None if f is None else f["value"] for f in plain],
           *[project(get(leaf)) for leaf, project in _PROJECTED], grace)
    cached = _VALUE_CACHE.get(key)
    if cached is None:
        if len(_VALUE_CACHE) > 65536:
            _VALUE_CACHE.clear()
        cached = _VALUE_CACHE[key] = _value_warnings(dict(zip(_KEY_ORDER, key, strict=False)),
                                                     grace)
    return list(cached)


_VALUE_CACHE: dict[tuple[Any, ...], list[Finding]] = {}


def _value_warnings(values: Values, grace: int | None) -> list[Finding]:
    drain = values["lifecycle.terminationDrainDuration"]
    found: list[Finding] = []
    found += _drain_vs_grace(drain, grace)
    found += _agent_budget(drain, grace, values["lifecycle.drainAgent"])
    found += _concurrency(values["proxy.concurrency"], values["proxy.resources.limits.cpu"])
    for container in ("proxy", "init"):
        for res in ("cpu", "memory"):
            found += _requests_vs_limits(container, res,
                                         values[f"{container}.resources.requests.{res}"],
                                         values[f"{container}.resources.limits.{res}"])
    for direction in ("Inbound", "Outbound"):
        found += _ports_overlap(direction, values[f"traffic.include{direction}Ports"],
                                values[f"traffic.exclude{direction}Ports"])
    found += _lifecycle(values)
    return found


def _drain_and_grace(drain: str | None, grace: int | None) -> tuple[float | None, int]:
    """The drain in seconds (None when unset) and the pod's grace period (default 30 s)."""
    seconds = formats.parse_duration(drain) if drain else None
    return seconds, DEFAULT_GRACE_SECONDS if grace is None else grace


@lru_cache(maxsize=4096)
def _drain_vs_grace(drain: str | None, grace: int | None) -> list[Finding]:
    seconds, grace_seconds = _drain_and_grace(drain, grace)
    if seconds is None or seconds < grace_seconds:
        return []
    return [{"code": "DrainExceedsGracePeriod",
             "message": f"terminationDrainDuration {drain} is not shorter than the pod's "
                        f"terminationGracePeriodSeconds ({grace_seconds}s): kubelet kills the "
                        "proxy before its drain ends"}]


@lru_cache(maxsize=4096)
def _agent_budget(drain: str | None, grace: int | None, agent: bool) -> list[Finding]:
    """meshcfg-drain stops terminationDrainDuration + 2 s before the deadline: is any left?"""
    seconds, grace_seconds = _drain_and_grace(drain, grace)
    if not agent or seconds is None or grace_seconds - seconds - AGENT_RESERVE > 0:
        return []
    return [{"code": "DrainAgentWithoutBudget",
             "message": f"the drain agent reserves terminationDrainDuration {drain} + "
                        f"{AGENT_RESERVE}s of the {grace_seconds}s grace period for pilot-agent, "
                        "which leaves it no time to wait for in-flight requests"}]


@lru_cache(maxsize=4096)
def _concurrency(concurrency: int | None, cpu_limit: str | None) -> list[Finding]:
    if not concurrency or cpu_limit is None:
        return []
    cores = formats.parse_quantity(cpu_limit)
    if cores is None or cores <= 0:
        return []
    expected = math.ceil(cores)
    if concurrency == expected:
        return []
    return [{"code": "ConcurrencyMismatch",
             "message": f"concurrency {concurrency} does not match the proxy CPU limit "
                        f"{cpu_limit} ({expected} core{'s' if expected != 1 else ''}): Envoy "
                        f"runs {concurrency} worker thread{'s' if concurrency != 1 else ''}"}]


@lru_cache(maxsize=4096)
def _requests_vs_limits(container: str, res: str, request: str | None,
                        limit: str | None) -> list[Finding]:
    if request is None or limit is None:
        return []
    req, lim = formats.parse_quantity(request), formats.parse_quantity(limit)
    if req is None or lim is None or req <= lim:
        return []
    name = "istio-proxy" if container == "proxy" else "istio-init"
    return [{"code": "RequestsExceedLimits",
             "message": f"{name} {res} request {request} exceeds its limit {limit}"}]


@lru_cache(maxsize=4096)
def _ports_overlap(direction: str, include: str | None, exclude: str | None) -> list[Finding]:
    if not include or not exclude:
        return []
    included, excluded = formats.port_set(include), formats.port_set(exclude)
    if included is None or excluded is None:   # "*" is the usual "all but these"
        return []
    both = sorted(included & excluded)
    if not both:
        return []
    return [{"code": "PortBothIncludedAndExcluded",
             "message": f"{direction.lower()} port{'s' if len(both) > 1 else ''} "
                        f"{','.join(map(str, both))} "
                        f"{'are' if len(both) > 1 else 'is'} both included and excluded; "
                        "the exclusion wins"}]


def _lifecycle(values: Values) -> list[Finding]:
    found: list[Finding] = []
    if values["lifecycle.preStop"] and values["lifecycle.drainAgent"]:
        found.append({"code": "PreStopAndDrainAgent",
                      "message": "a preStop hook and the drain agent are both in effect (from "
                                 "different layers); the drain agent is used"})
    if values["lifecycle.holdApplicationUntilProxyStarts"] and values["lifecycle.postStart"]:
        found.append({"code": "PostStartReplacesHold",
                      "message": "a custom postStart replaces Istio's `pilot-agent wait` hook, "
                                 "so holdApplicationUntilProxyStarts no longer holds the app"})
    return found


def untrusted_code(resolved: Mapping[str, Field], root_namespace: str) -> list[Finding]:
    """A hook that runs code or an agent image from outside the mesh root namespace."""
    return [{"code": "UntrustedCode", "message": reason}
            for reason in trust.untrusted_fields(resolved, root_namespace)]


def partial_resources(present: list[str]) -> list[Finding]:
    if not present or len(present) == 4:
        return []
    return [{"code": "PartialResourceAnnotations",
             "message": f"only {', '.join(present)} of the four sidecar resource annotations "
                        "set: Istio then drops every other sidecar resource value"}]


def invalid_input(code: str, where: str, reason: str) -> Finding:
    return {"code": code, "message": f"{where}: {reason}; ignored"}


def stale_sidecar(resolved: Mapping[str, Field], pod_spec: Mapping[str, Any],
                  annotations: Mapping[str, str] | None = None) -> list[Finding]:
    """A running pod whose injected sidecar differs from its effective config."""

    running = running_values(pod_spec, annotations)
    if running is None:
        return []
    stale = stale_fields(resolved, running)
    if not stale:
        return []
    changes = "; ".join(f"{leaf} {_show(now)} -> {_show(wanted)}" for leaf, now, wanted in stale)
    return [{"code": "StaleSidecar",
             "message": f"the running sidecar differs from the effective config; a restart "
                        f"would change: {changes}"}]


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value or '""'
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
