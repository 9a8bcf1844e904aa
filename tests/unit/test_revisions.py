"""A pod's revision (SPEC section 2) picks the injector values and mesh config its
default and mesh layers come from."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import pod, value

from kubectl_meshcfg.core import revisions
from kubectl_meshcfg.core.model import MeshConfig, Origin, parse_injector_values
from kubectl_meshcfg.core.resolve import Resolver, Revisions


@pytest.mark.parametrize(("annotations", "labels", "namespace", "expected"), [
    ({}, {}, {}, "default"),
    ({"istio.io/rev": "canary"}, {}, {"istio-injection": "enabled"}, "canary"),   # injected
    ({"sidecar.istio.io/status": json.dumps({"revision": "stable"})}, {}, {}, "stable"),
    ({}, {"istio.io/rev": "canary"}, {"istio-injection": "enabled"}, "default"),
    ({}, {"istio.io/rev": "canary"}, {"istio.io/rev": "stable"}, "stable"),
    ({}, {"istio.io/rev": "canary"}, {}, "canary"),
    ({}, {}, {"istio.io/rev": "prod"}, "1-31"),                                   # a tag
])
def test_revision_of_a_pod(annotations: dict[str, str], labels: dict[str, str],
                           namespace: dict[str, str], expected: str) -> None:
    assert revisions.revision_of(annotations, labels, namespace, {"prod": "1-31"}) == expected


def test_configmap_names() -> None:
    assert revisions.configmap_revision("istio") == ("mesh", "default")
    assert revisions.configmap_revision("istio-canary") == ("mesh", "canary")
    assert revisions.configmap_revision("istio-sidecar-injector") == ("injector", "default")
    assert revisions.configmap_revision("istio-sidecar-injector-canary") == ("injector", "canary")
    assert revisions.configmap_revision("other") is None
    tag = {"metadata": {"name": "istio-revision-tag-prod",
                        "labels": {"istio.io/rev": "1-31", "istio.io/tag": "prod"}}}
    assert revisions.tag_of(tag) == ("prod", "1-31")


def injector(name: str, cpu: str) -> Any:
    doc = {"metadata": {"name": name, "namespace": "istio-system"},
           "data": {"values": json.dumps({"global": {"proxy": {"resources": {
               "requests": {"cpu": cpu}}}}})}}
    return parse_injector_values(doc, Origin("cm.yaml"), "istio-system")


def test_each_revision_resolves_against_its_own_configmaps() -> None:
    canary_mesh = MeshConfig("istio-system", "istio-canary", "istio-system",
                             {"terminationDrainDuration": "9s"})
    resolver = Resolver([], injector=injector("istio-sidecar-injector", "10m"),
                        revisions=Revisions(
                            meshes={"canary": canary_mesh},
                            injectors={"canary": injector("istio-sidecar-injector-canary",
                                                          "300m")},
                            namespace_labels={"canary-ns": {"istio.io/rev": "canary"}}))
    stable = dict(resolver.resolve(pod()))
    canary = dict(resolver.resolve(pod(namespace="canary-ns")))
    injected = dict(resolver.resolve(pod(annotations={"istio.io/rev": "canary"})))
    assert value(stable, "proxy.resources.requests.cpu") == "10m"
    assert value(stable, "lifecycle.terminationDrainDuration") == "5s"
    for result in (canary, injected):
        field = result["fields"]["proxy.resources.requests.cpu"]
        assert field["value"] == "300m"
        assert field["source"]["name"] == "istio-sidecar-injector-canary"
        assert result["fields"]["lifecycle.terminationDrainDuration"]["source"]["name"] == \
            "istio-canary"
    # an unknown revision resolves like the default one
    assert value(dict(resolver.resolve(pod(annotations={"istio.io/rev": "gone"}))),
                 "proxy.resources.requests.cpu") == "10m"
