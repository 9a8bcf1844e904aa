"""explain and lint report the Envoy stats render adds for the drain agent, and lint warns
when a pod's own annotations keep them from Istio (the agent then counts sockets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import codes, config, mesh, pod, resolve
from hypothesis import given, settings
from hypothesis import strategies as st
from scenariolib import scenarios

from kubectl_meshcfg.cli.output import explain_text
from kubectl_meshcfg.core import agentstats, render
from kubectl_meshcfg.core.errors import InvalidInput
from kubectl_meshcfg.core.model import Origin, parse_target
from kubectl_meshcfg.core.resolve import Resolver

AGENT = {"lifecycle": {"drainAgent": {"enabled": True}}}
RECORDED = Path(__file__).parents[1] / "agent" / "data"
SPC_SOURCE = {"layer": "namespace", "kind": "SidecarProxyConfig", "namespace": "ai",
              "name": "drain"}


def test_explain_shows_the_agents_stats_and_where_they_come_from() -> None:
    user = config("ai", "stats", {"selector": {"matchLabels": {"app": "a"}},
                                  "proxy": {"proxyStatsMatcher": {
                                      "inclusionPrefixes": ["http.10."],
                                      "inclusionSuffixes": ["downstream_cx_active"]}}})
    result = resolve([config("ai", "drain", AGENT), user], pod(labels={"app": "a"}))
    field = result["fields"]["proxy.proxyStatsMatcher"]
    assert field["value"] == {"inclusionPrefixes": ["http.10."],
                              "inclusionSuffixes": ["downstream_cx_active", "downstream_rq_active"]}
    assert field["source"]["name"] == "stats"            # the matcher is still the user's
    assert field["added"] == [{"value": {"inclusionSuffixes": ["downstream_rq_active"]},
                               "source": SPC_SOURCE}]
    assert "+ {\"inclusionSuffixes\":[\"downstream_rq_active\"]} for the drain agent " \
           "(namespace ai/drain)" in explain_text(result)   # type: ignore[arg-type]


def test_without_a_matcher_the_agent_is_its_source_and_without_the_agent_nothing_is_added() -> None:
    field = resolve([config("ai", "drain", AGENT)], pod())["fields"]["proxy.proxyStatsMatcher"]
    assert field == {"value": {"inclusionSuffixes": list(agentstats.AGENT_STATS_SUFFIXES)},
                     "source": SPC_SOURCE, "overridden": [],
                     "added": [{"value": {"inclusionSuffixes": list(
                         agentstats.AGENT_STATS_SUFFIXES)}, "source": SPC_SOURCE}]}
    assert "proxy.proxyStatsMatcher" not in resolve([], pod())["fields"]
    off = config("ai", "drain", {"lifecycle": {"drainAgent": {"enabled": False}}})
    assert "proxy.proxyStatsMatcher" not in resolve([off], pod())["fields"]
    both = config("ai", "drain", {**AGENT, "proxy": {"proxyStatsMatcher": {
        "inclusionSuffixes": ["downstream_rq_active", "downstream_cx_active"]}}})
    assert "added" not in resolve([both], pod())["fields"]["proxy.proxyStatsMatcher"]


@pytest.mark.parametrize(("annotations", "mesh_matcher", "filtered"), [
    ({}, None, False),
    # Istio: the annotation replaces the ProxyConfig's suffixes (getStatsOptions)
    ({"sidecar.istio.io/statsInclusionSuffixes": "upstream_rq_active"}, None, True),
    ({"sidecar.istio.io/statsInclusionSuffixes": "downstream_rq_active,downstream_cx_active"},
     None, False),
    ({"sidecar.istio.io/statsInclusionPrefixes": "http.,listener."}, None, False),
    # a user's own proxy.istio.io/config: render cannot write the matcher
    ({"proxy.istio.io/config": "concurrency: 2"}, None, True),
    ({"proxy.istio.io/config": "concurrency: 2"},
     {"inclusionRegexps": [".*downstream_(rq|cx)_active"]}, False),
    ({"proxy.istio.io/config": "proxyStatsMatcher: {inclusionSuffixes: [downstream_rq_active]}"},
     None, True),
    ({"proxy.istio.io/config": "proxyStatsMatcher: {inclusionSuffixes: "
                               "[downstream_rq_active, downstream_cx_active]}"}, None, False),
])
def test_lint_warns_when_the_agent_will_count_sockets(
        annotations: dict[str, str], mesh_matcher: dict[str, Any] | None, filtered: bool) -> None:
    mesh_config = mesh({} if mesh_matcher is None else {"proxyStatsMatcher": mesh_matcher})
    target = pod(annotations=annotations)
    result = resolve([config("ai", "drain", AGENT)], target, mesh_config)
    assert ("DrainAgentStatsFiltered" in codes(result)) is filtered
    # the same finding reaches render's notes; without the agent there is nothing to say
    notes = render.render(target, result).notes          # type: ignore[arg-type]
    assert any("the drain agent reads" in n for n in notes) is filtered
    assert "DrainAgentStatsFiltered" not in codes(resolve([], target, mesh_config))


@pytest.mark.parametrize("case", ["istio-default", "user-matcher", "agent-inclusions",
                                  "exit-on-zero"])
def test_the_matcher_model_predicts_what_envoy_exported(case: str) -> None:
    """Recorded from the Envoy stand-in under the bootstrap Istio's real pilot-agent wrote
    from each ProxyConfig (tests/agent/record_envoy_stats.py)."""
    recording = json.loads((RECORDED / f"envoy-stats-{case}.json").read_text())
    matcher = recording["proxyConfig"].get("proxyStatsMatcher") or {}
    exported = {line.split(":", 1)[0] for line in recording["body"].splitlines()}
    predicted = {name for name in agentstats.AGENT_STAT_NAMES if agentstats.passes(matcher, name)}
    if case == "exit-on-zero":   # pilot-agent adds downstream_cx_active itself
        predicted |= {n for n in agentstats.AGENT_STAT_NAMES if n.endswith("downstream_cx_active")}
    assert predicted == exported & set(agentstats.AGENT_STAT_NAMES)


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.sampled_from([None, "annotation-first", "workload-first"]))
def test_explain_of_the_rendered_pod_is_explain_of_the_pod(
        scenario: tuple[list[Any], Any], precedence: str | None) -> None:
    """explain(render(x)) == explain(x), the agent's additions included, and what render
    writes into proxy.istio.io/config is explain's matcher."""
    configs, target = scenario
    resolver = Resolver(configs, None, precedence=precedence)
    effective = resolver.resolve(target)
    try:
        result = render.render(target, effective)
    except InvalidInput:   # an agent without time is refused (tested apart)
        return
    doc = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": target.name, "namespace": target.namespace,
                        "labels": dict(target.labels), "annotations": dict(target.annotations)},
           "spec": {"containers": [{"name": "app", "image": "app"}]}}
    if target.grace_period is not None:
        doc["spec"]["terminationGracePeriodSeconds"] = target.grace_period
    merged = render.merge_apply(doc, result.apply_config)
    again = resolver.resolve(parse_target(merged, Origin("rendered.yaml", 1), "default"))
    assert again["fields"] == effective["fields"]
    written = result.apply_config["metadata"]["annotations"].get("proxy.istio.io/config")
    matcher = effective["fields"].get("proxy.proxyStatsMatcher")
    if written is not None and matcher is not None and "added" in matcher:
        assert yaml.safe_load(written)["proxyStatsMatcher"] == matcher["value"]
