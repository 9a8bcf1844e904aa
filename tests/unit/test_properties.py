"""Properties of resolution, checked on generated configs and pods (hypothesis)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from naivelib import resolve_naive
from scenariolib import ROOT, proxy_config_sets, revision_setups, scenarios

from kubectl_meshcfg.core import agentstats, fields
from kubectl_meshcfg.core.resolve import LAYER_ORDER, Resolver


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.sampled_from([None, "annotation-first", "workload-first"]))
def test_the_fast_resolver_agrees_with_the_naive_reading_of_the_spec(
        scenario: tuple[list[Any], Any], precedence: str | None) -> None:
    configs, target = scenario
    fast = Resolver(configs, None, precedence=precedence).resolve(target)
    assert fast == resolve_naive(configs, None, target, precedence=precedence)


@settings(max_examples=300, deadline=None)
@given(scenarios(), proxy_config_sets(revisioned=True),
       st.sampled_from([None, "annotation-first", "workload-first"]),
       st.sampled_from([None, "canary"]))
def test_with_istio_proxyconfigs_the_fast_resolver_agrees_with_the_naive_reading(
        scenario: tuple[list[Any], Any], proxy_configs: list[Any], precedence: str | None,
        revision: str | None) -> None:
    configs, target = scenario
    if revision is not None:    # a pod of another revision: its istiod reads other objects
        target = dataclasses.replace(target, labels={**target.labels, "istio.io/rev": revision})
    fast = Resolver(configs, None, precedence=precedence, proxy_configs=proxy_configs)
    assert fast.resolve(target) == resolve_naive(configs, None, target, precedence=precedence,
                                                 proxy_configs=proxy_configs)


@settings(max_examples=100, deadline=None)
@given(scenarios(), proxy_config_sets(), st.randoms())
def test_the_order_of_proxyconfig_documents_does_not_matter_beyond_istiods_rule(
        scenario: tuple[list[Any], Any], proxy_configs: list[Any], rnd: random.Random) -> None:
    configs, target = scenario
    shuffled = list(proxy_configs)
    rnd.shuffle(shuffled)
    assert Resolver(configs, proxy_configs=shuffled).resolve(target) == \
        Resolver(configs, proxy_configs=proxy_configs).resolve(target)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms())
def test_document_order_does_not_matter_beyond_the_creation_order_rule(
        scenario: tuple[list[Any], Any], rnd: random.Random) -> None:
    configs, target = scenario
    shuffled = list(configs)
    rnd.shuffle(shuffled)
    assert Resolver(shuffled).resolve(target) == Resolver(configs).resolve(target)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_a_lower_layer_never_changes_a_field_a_higher_layer_sets(
        scenario: tuple[list[Any], Any]) -> None:
    configs, target = scenario
    result = Resolver(configs).resolve(target)
    order = LAYER_ORDER[result["precedence"]]
    for path, field in result["fields"].items():
        rank = order.index(field["source"]["layer"])
        lower = [order.index(e["source"]["layer"]) for e in field["overridden"]]
        assert all(r < rank for r in lower), path
        assert lower == sorted(lower, reverse=True), path
    # and dropping every object below the top layer that set a field leaves the field alone
    for path, field in result["fields"].items():
        if field["source"]["layer"] not in ("global", "namespace", "workload"):
            continue
        top = field["source"]
        keep = [c for c in configs
                if (c.namespace, c.name) == (top["namespace"], top["name"])
                or order.index(_scope(c)) > order.index(top["layer"])]
        kept = Resolver(keep, precedence=result["precedence"]).resolve(target)
        assert _layered(path, kept["fields"][path]) == _layered(path, field), path


def _layered(path: str, field: Any) -> Any:
    """A field's value as its layers set it: a drain agent enabled in a lower layer adds its
    stats to the matcher (another leaf's doing), so matchers compare with those stats in."""
    if path == agentstats.MATCHER:
        return agentstats.with_agent_stats(field["value"])
    return field["value"]


def _scope(c: Any) -> str:
    if c.selector is not None:
        return "workload"
    return "global" if c.namespace == ROOT else "namespace"


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_every_resolved_value_validates(scenario: tuple[list[Any], Any]) -> None:
    configs, target = scenario
    for path, field in Resolver(configs).resolve(target)["fields"].items():
        if path == "proxy.concurrency" and field["source"]["layer"] == "default":
            # derived by pilot-agent from the CPU limit: any whole number of cores
            assert isinstance(field["value"], int) and field["value"] >= 0
            continue
        assert fields.check_leaf(fields.leaf_for(path), field["value"]) is None, path


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.data(), st.sampled_from([None, "annotation-first", "workload-first"]))
def test_with_revisions_the_fast_resolver_agrees_with_the_naive_reading(
        scenario: tuple[list[Any], Any], data: st.DataObject, precedence: str | None) -> None:
    """Each revision's own injector values and mesh config, chosen by Istio's webhook rules
    (namespace labels, the pod's label, a tag, the injected pod's annotation or status)."""
    configs, target = scenario
    injector, mesh, revisions, target = data.draw(revision_setups(target))
    fast = Resolver(configs, mesh, precedence=precedence, injector=injector,
                    revisions=revisions).resolve(target)
    assert fast == resolve_naive(configs, mesh, target, precedence=precedence,
                                 injector=injector, revisions=revisions)
