"""The round trip, proven with the real injector, on generated inputs (hypothesis):
random SidecarProxyConfigs at every layer, user annotations, a mesh config and a
precedence mode. For every generated pod:

(a) explaining the rendered pod gives the effective config of its input (every leaf,
    value and winning layer);
(b) what the real `istioctl kube-inject` puts into the rendered pod, read back, equals
    explain's value for every leaf it carries, unless render said it cannot deliver that
    leaf (only a user's own annotation could, and render never changes one);
(c) lint on the injected pod reports no StaleSidecar.

The pods of one example share one kube-inject call (48 a call, 6 examples: 288 pods).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenariolib import scenarios

from kubectl_meshcfg.core import fields, render, staleness
from kubectl_meshcfg.core.errors import InvalidInput
from kubectl_meshcfg.core.model import MeshConfig, Origin, parse_target
from kubectl_meshcfg.core.resolve import Resolver

from . import injector as inj

pytestmark = pytest.mark.istio

PODS_PER_CALL = 48
MESHES: list[dict[str, Any]] = [
    {},
    {"concurrency": 3, "terminationDrainDuration": "20s"},
    {"holdApplicationUntilProxyStarts": True, "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true",
                                                                "TEAM": "x"}},
]
# user annotations the injector accepts (an invalid one fails the whole kube-inject call)
USER_ANNOTATIONS = st.dictionaries(
    st.sampled_from(["sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyMemoryLimit",
                     "sidecar.istio.io/logLevel", "sidecar.istio.io/componentLogLevel",
                     "traffic.sidecar.istio.io/excludeInboundPorts",
                     "traffic.sidecar.istio.io/excludeOutboundIPRanges",
                     "proxy.istio.io/config"]),
    st.just(""), max_size=3).flatmap(lambda keys: st.fixed_dictionaries(
        {key: st.sampled_from(VALUES[key]) for key in keys}))
VALUES = {
    "sidecar.istio.io/proxyCPU": ["250m", "1"],
    "sidecar.istio.io/proxyMemoryLimit": ["2Gi", "512Mi"],
    "sidecar.istio.io/logLevel": ["debug", "error"],
    "sidecar.istio.io/componentLogLevel": ["misc:info", "upstream:debug,misc:error"],
    "traffic.sidecar.istio.io/excludeInboundPorts": ["8080", "8080,9090"],
    "traffic.sidecar.istio.io/excludeOutboundIPRanges": ["10.96.0.0/12"],
    "proxy.istio.io/config": ["concurrency: 3", "terminationDrainDuration: 40s",
                              "proxyMetadata: {K: v}"],
}


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Any], dict[str, str], Any, str | None]:

    configs, target = draw(scenarios())
    precedence = draw(st.sampled_from([None, "annotation-first", "workload-first"]))
    return configs, draw(USER_ANNOTATIONS), target, precedence


def rendered(resolver: Resolver, doc: dict[str, Any], index: int
             ) -> tuple[Any, render.Rendered, dict[str, Any]] | None:
    """doc resolved, rendered and merged with what render applies (None: render refuses
    a drain agent left no time, tested apart)."""
    original = parse_target(doc, Origin("in.yaml", index + 1), "default")
    effective = resolver.resolve(original)
    try:
        result = render.render(original, effective)
    except InvalidInput:
        return None
    return effective, result, render.merge_apply(doc, result.apply_config)


def pod_doc(index: int, target: Any, annotations: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    if target.grace_period is not None:
        spec["terminationGracePeriodSeconds"] = target.grace_period
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"rt-{index}", "namespace": target.namespace,
                         "labels": dict(target.labels), "annotations": annotations},
            "spec": spec}


def mesh_of(default_config: dict[str, Any]) -> MeshConfig:
    return MeshConfig("istio-system", "istio", "istio-system", default_config)


@pytest.fixture(scope="module")
def injectors(istio_injector: inj.Injector) -> list[inj.Injector]:
    return [istio_injector.with_mesh({"defaultConfig": mesh}) for mesh in MESHES]


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(st.sampled_from(range(len(MESHES))),
       st.lists(cases(), min_size=PODS_PER_CALL, max_size=PODS_PER_CALL))
def test_render_then_inject_runs_what_explain_says(injectors: list[inj.Injector], mesh_index: int,
                                                   batch: list[Any]) -> None:
    mesh = mesh_of(MESHES[mesh_index])
    rendered_docs, expected = [], []
    for index, (configs, users, target, precedence) in enumerate(batch):
        resolver = Resolver(configs, mesh, precedence=precedence)
        done = rendered(resolver, pod_doc(len(rendered_docs), target, users), index)
        if done is None:
            continue
        effective, result, merged = done
        again = resolver.resolve(parse_target(merged, Origin("rendered.yaml", 1), "default"))
        assert again["fields"] == effective["fields"], index                        # (a)
        rendered_docs.append(merged)
        expected.append((resolver, effective, result.notes))
    injected = injectors[mesh_index].inject(yaml.safe_dump_all(rendered_docs))
    assert len(injected) == len(rendered_docs)
    for index, (pod, (resolver, effective, notes)) in enumerate(zip(injected, expected,
                                                                    strict=True)):
        running = staleness.running_values(inj.pod_spec(pod))
        assert running is not None
        undeliverable = {note.split(" ", 1)[0] for note in notes}
        stale = [s for s in staleness.stale_fields(effective["fields"], running)
                 if s[0] not in undeliverable]
        assert stale == [], (index, rendered_docs[index]["metadata"])                 # (b)
        carried = {leaf.path for leaf in fields.LEAVES if leaf.istio.injected}
        missing = (carried & set(effective["fields"])) - set(running) - undeliverable
        assert missing == set(), (index, rendered_docs[index]["metadata"])
        if not undeliverable:
            target = parse_target(pod, Origin("injected.yaml", index + 1), "default")
            codes = [w["code"] for w in resolver.resolve(target)["warnings"]]
            assert "StaleSidecar" not in codes, index                                 # (c)
