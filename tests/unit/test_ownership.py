"""render never lists, overwrites or removes a key a user wrote, so that explaining the
rendered object gives the effective config of its input (SPEC section 2); live, a key is
meshcfg's only when its sync field manager set it and no other manager did."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scenariolib import scenarios

from kubectl_meshcfg.core import annotations as ann
from kubectl_meshcfg.core import render
from kubectl_meshcfg.core.errors import InvalidInput
from kubectl_meshcfg.core.model import SYNC_FIELD_MANAGER, Origin, Target, parse_target
from kubectl_meshcfg.core.resolve import Resolver


def as_pod(target: Target) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": target.name, "namespace": target.namespace,
                            "labels": dict(target.labels), "annotations": dict(target.annotations)}
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "app"}]}
    if target.grace_period is not None:
        spec["terminationGracePeriodSeconds"] = target.grace_period
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def rendered_target(resolver: Resolver, target: Target) -> tuple[Target, render.Rendered]:
    doc = as_pod(target)
    original = parse_target(doc, Origin("in.yaml", 1), "default")
    try:
        rendered = render.render(original, resolver.resolve(original))
    except InvalidInput:      # render refuses a drain agent left no time: nothing to compare
        assume(False)
        raise
    merged = render.merge_apply(doc, rendered.apply_config)
    return parse_target(merged, Origin("rendered.yaml", 1), "default"), rendered


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.sampled_from([None, "annotation-first", "workload-first"]))
def test_explaining_the_rendered_object_gives_the_same_effective_config(
        scenario: tuple[list[Any], Any], precedence: str | None) -> None:
    configs, target = scenario
    resolver = Resolver(configs, precedence=precedence)
    again, rendered = rendered_target(resolver, target)
    assert resolver.resolve(again)["fields"] == resolver.resolve(target)["fields"]
    mine = ann.managed_keys(again.annotations)
    users = {k for k in target.annotations if k in ann.READ_ANNOTATIONS}
    assert not mine & users                                   # never listed
    for key in users:                                         # never changed or removed
        assert again.annotations[key] == target.annotations[key]
    # and rendering the rendered object again changes nothing (sync's idempotence)
    twice, _ = rendered_target(resolver, again)
    assert twice.annotations == again.annotations


def test_a_user_annotation_that_loses_to_a_workload_config_is_reported_not_overwritten() -> None:
    from builders import config, pod

    spc = config("ai", "wl", {"selector": {"matchLabels": {"app": "a"}},
                              "proxy": {"logLevel": "info"}})
    target = pod(labels={"app": "a"}, annotations={"sidecar.istio.io/logLevel": "debug"})
    resolver = Resolver([spc], precedence="workload-first")
    again, rendered = rendered_target(resolver, target)
    assert again.annotations["sidecar.istio.io/logLevel"] == "debug"
    assert any(note.startswith("proxy.logLevel is not rendered: the object's own annotation "
                               "sidecar.istio.io/logLevel") for note in rendered.notes)


def managed_fields(*entries: tuple[str, list[str]]) -> list[dict[str, Any]]:
    return [{"manager": manager, "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {
        "f:metadata": {"f:annotations": {f"f:{key}": {} for key in keys}}}}}}
        for manager, keys in entries]


def deployment(annotations: dict[str, str], entries: list[dict[str, Any]]) -> Target:
    doc = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "d", "namespace": "ai", "managedFields": entries},
           "spec": {"template": {"metadata": {"annotations": annotations},
                                 "spec": {"containers": [{"name": "a"}]}}}}
    return parse_target(doc, Origin("cluster"), "default")


def test_live_ownership_comes_from_managed_fields() -> None:
    cpu, level = "sidecar.istio.io/proxyCPU", "sidecar.istio.io/logLevel"
    listed = {ann.MANAGED_ANNOTATIONS: f"{cpu},{level}", cpu: "300m", level: "info"}
    target = deployment(listed, managed_fields(
        (SYNC_FIELD_MANAGER, [cpu, level, ann.MANAGED_ANNOTATIONS]),
        ("kubectl-client-side-apply", [cpu])))       # the user wrote proxyCPU too
    assert target.synced_keys == frozenset({level, ann.MANAGED_ANNOTATIONS})
    assert ann.managed_keys(target.annotations, target.synced_keys) == {level}
    assert ann.user_keys(target.annotations, target.synced_keys) == {cpu}
    layer = ann.read_annotations(target.annotations, target.synced_keys)
    assert layer.values["proxy.resources.requests.cpu"] == "300m"
    assert "proxy.logLevel" not in layer.values
    # a CronJob keeps its template under jobTemplate; no managedFields = unknown
    assert deployment({}, []).synced_keys is None
