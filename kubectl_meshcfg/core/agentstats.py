"""The Envoy stats meshcfg-drain reads, in the effective config and in what Istio delivers.

Istio's bootstrap keeps only the stats its matcher lets through (`pkg/bootstrap/config.go`,
`getStatsOptions`), and neither `downstream_rq_active` nor `downstream_cx_active` by
default. With the drain agent enabled the effective `proxy.proxyStatsMatcher` is the
resolved one plus `AGENT_STATS_SUFFIXES` (render writes exactly that, explain shows it,
the addition listed under the field's `added` with the drain agent's source). Where a
pod's own annotations keep that matcher from Istio, the agent falls back to counting
sockets: `DrainAgentStatsFiltered`.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import annotations as ann
from .effective import Entry, Field, Finding

MATCHER = "proxy.proxyStatsMatcher"
AGENT = "lifecycle.drainAgent"
# drain_agent.envoy_admin.REQUIRED_SUFFIXES (checked equal in the unit tier)
AGENT_STATS_SUFFIXES = ("downstream_rq_active", "downstream_cx_active")
# Istio's annotations that replace one list of the ProxyConfig's matcher each (not merged)
LIST_ANNOTATIONS = {"inclusionPrefixes": "sidecar.istio.io/statsInclusionPrefixes",
                    "inclusionSuffixes": "sidecar.istio.io/statsInclusionSuffixes",
                    "inclusionRegexps": "sidecar.istio.io/statsInclusionRegexps"}
# what the agent reads: the counters of its own admin call (their absence is how it tells a
# filtering matcher) and those of an application listener
AGENT_STAT_NAMES = ("http.admin.downstream_rq_active", "listener.admin.downstream_cx_active",
                    "http.inbound_0.0.0.0_8080.downstream_rq_active",
                    "listener.0.0.0.0_15006.downstream_cx_active")


def agent_enabled(field: Field | None) -> bool:
    value = None if field is None else field["value"]
    return bool(isinstance(value, Mapping) and value.get("enabled"))


def with_agent_stats(matcher: Mapping[str, Any] | None) -> dict[str, Any]:
    """The matcher with the agent's suffixes appended after the user's own."""
    merged = dict(matcher or {})
    suffixes = list(merged.get("inclusionSuffixes") or [])
    merged["inclusionSuffixes"] = suffixes + [s for s in AGENT_STATS_SUFFIXES if s not in suffixes]
    return merged


def with_agent_field(matcher: Field | None, agent: Field) -> Field | None:
    """The effective matcher field of a pod whose drain agent is enabled: the suffixes the
    agent adds go into the value and are listed, with the agent's source, under `added`.
    None when nothing is added (and no field existed)."""
    old = None if matcher is None else matcher["value"]
    present = set((old or {}).get("inclusionSuffixes") or [])
    missing = [s for s in AGENT_STATS_SUFFIXES if s not in present]
    if not missing:
        return matcher
    added: Entry = {"value": {"inclusionSuffixes": missing}, "source": agent["source"]}
    value = with_agent_stats(old)
    if matcher is None:
        return {"value": value, "source": agent["source"], "overridden": [], "added": [added]}
    return {"value": value, "source": matcher["source"], "overridden": matcher["overridden"],
            "added": [added]}


def layered_value(field: Field) -> dict[str, Any]:
    """The matcher as its winning source wrote it, without the agent's additions."""
    value = dict(field["value"] or {})
    added = {s for entry in field.get("added", ()) for s in entry["value"]["inclusionSuffixes"]}
    if added:
        value["inclusionSuffixes"] = [s for s in value.get("inclusionSuffixes") or ()
                                      if s not in added]
    return value


def passes(matcher: Mapping[str, Any], name: str) -> bool:
    """Does Envoy keep stat `name` under Istio's inclusion lists (regexps match whole)?"""
    if any(name.startswith(p) for p in matcher.get("inclusionPrefixes") or ()):
        return True
    if any(name.endswith(s) for s in matcher.get("inclusionSuffixes") or ()):
        return True
    for pattern in matcher.get("inclusionRegexps") or ():
        try:
            if re.fullmatch(str(pattern), name):
                return True
        except re.error:
            continue
    return False


def delivered_matcher(resolved: Mapping[str, Field], annotations: Mapping[str, str],
                      theirs: frozenset[str]) -> tuple[dict[str, Any], list[str]]:
    """The matcher Istio's bootstrap will use for the pod, and the user's annotations that
    decided it: a user's own `proxy.istio.io/config` is what the injector reads (over the
    mesh's defaultConfig; render never changes it), and each `statsInclusion*` annotation
    replaces its list."""
    field = resolved.get(MATCHER)
    chain: Sequence[Entry] = [] if field is None else [
        {"value": layered_value(field), "source": field["source"]}, *field["overridden"]]
    why: list[str] = []
    matcher: dict[str, Any] = dict(field["value"]) if field is not None else {}
    if ann.PROXY_CONFIG in theirs:
        why.append(ann.PROXY_CONFIG)
        own = [e for e in chain if e["source"].get("annotation") == ann.PROXY_CONFIG]
        mesh = [e for e in chain if e["source"]["layer"] == "mesh"]
        matcher = dict((own or mesh)[0]["value"]) if own or mesh else {}
    for key, annotation in LIST_ANNOTATIONS.items():
        text = annotations.get(annotation)
        if text:
            why.append(annotation)
            matcher[key] = text.split(",")
    return matcher, why


def stats_warnings(resolved: Mapping[str, Field], annotations: Mapping[str, str],
                   synced: frozenset[str] | None) -> list[Finding]:
    """The drain agent is enabled but Istio will not export what it reads."""
    if not agent_enabled(resolved.get(AGENT)):
        return []
    theirs = ann.user_keys(annotations, synced) | frozenset(
        a for a in LIST_ANNOTATIONS.values() if a in annotations)
    matcher, why = delivered_matcher(resolved, annotations, theirs)
    if not why:
        return []
    filtered = [name for name in AGENT_STAT_NAMES if not passes(matcher, name)]
    if not filtered:
        return []
    return [{"code": "DrainAgentStatsFiltered",
             "message": f"the drain agent reads {', '.join(filtered)}, which Istio will not "
                        f"export: the pod's own {' and '.join(why)} decide the stats matcher "
                        "and render never changes a user's annotation; the agent then counts "
                        "every open connection as in flight (idle keep-alives hold the drain "
                        "until its deadline)"}]
