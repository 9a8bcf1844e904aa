"""Istio's annotations as the annotation layer (SPEC section 2)."""

from __future__ import annotations

import pytest
from builders import codes, config, layer, pod, resolve, value

RESOURCES = {
    "sidecar.istio.io/proxyCPU": ("requests", "cpu", "1"),
    "sidecar.istio.io/proxyMemory": ("requests", "memory", "256Mi"),
    "sidecar.istio.io/proxyCPULimit": ("limits", "cpu", "3"),
    "sidecar.istio.io/proxyMemoryLimit": ("limits", "memory", "2Gi"),
}


def test_the_four_resource_annotations_set_proxy_and_init_resources() -> None:
    annotations = {key: v for key, (_, _, v) in RESOURCES.items()}
    result = resolve([], pod(annotations=annotations))
    for key, (group, res, expected) in RESOURCES.items():
        for container in ("proxy", "init"):
            field = result["fields"][f"{container}.resources.{group}.{res}"]
            assert field["value"] == expected
            assert field["source"] == {"layer": "annotation", "annotation": key}
    assert "PartialResourceAnnotations" not in codes(result)


@pytest.mark.parametrize("key", list(RESOURCES))
def test_one_resource_annotation_alone_is_flagged_but_resolution_stays_leaf_by_leaf(key: str) -> None:
    result = resolve([], pod(annotations={key: RESOURCES[key][2]}))
    assert codes(result)[0] == "PartialResourceAnnotations"
    assert key in result["warnings"][0]["message"]
    group, res, expected = RESOURCES[key]
    assert value(result, f"proxy.resources.{group}.{res}") == expected
    # the other three stay as resolved, and SPEC says resolution stays leaf by leaf
    assert sum(layer(result, f"proxy.resources.{g}.{r}") == "default"
               for g in ("requests", "limits") for r in ("cpu", "memory")) == 3


@pytest.mark.parametrize("key,leaf,text,expected", [
    ("sidecar.istio.io/logLevel", "proxy.logLevel", "debug", "debug"),
    ("sidecar.istio.io/componentLogLevel", "proxy.componentLogLevel", "misc:error, upstream:debug",
     "misc:error,upstream:debug"),
    ("traffic.sidecar.istio.io/includeInboundPorts", "traffic.includeInboundPorts", "80, 443", "80,443"),
    ("traffic.sidecar.istio.io/excludeInboundPorts", "traffic.excludeInboundPorts", "8080", "8080"),
    ("traffic.sidecar.istio.io/includeOutboundPorts", "traffic.includeOutboundPorts", "443", "443"),
    ("traffic.sidecar.istio.io/excludeOutboundPorts", "traffic.excludeOutboundPorts", "3306", "3306"),
    ("traffic.sidecar.istio.io/includeOutboundIPRanges", "traffic.includeOutboundIPRanges",
     "10.0.0.0/8, fd00::/8", "10.0.0.0/8,fd00::/8"),
    ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "traffic.excludeOutboundIPRanges",
     "169.254.169.254/32", "169.254.169.254/32"),
])
def test_scalar_annotations_map_to_their_leaf_with_spaces_removed(
        key: str, leaf: str, text: str, expected: str) -> None:
    result = resolve([], pod(annotations={key: text}))
    assert result["fields"][leaf]["value"] == expected
    assert result["fields"][leaf]["source"] == {"layer": "annotation", "annotation": key}


def test_proxy_config_annotation_carries_its_keys_converted_to_schema_types() -> None:
    text = """
concurrency: "3"
terminationDrainDuration: 20s
holdApplicationUntilProxyStarts: "true"
proxyStatsMatcher: {inclusionRegexps: [".*upstream_rq.*"]}
privateKeyProvider: {cryptomb: {pollDelay: 5ms, fallback: false}}
proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true", EXTRA: "1"}
tracing: {sampling: 10}
"""
    result = resolve([], pod(annotations={"proxy.istio.io/config": text}))
    assert value(result, "proxy.concurrency") == 3
    assert value(result, "lifecycle.terminationDrainDuration") == "20s"
    assert value(result, "lifecycle.holdApplicationUntilProxyStarts") is True
    assert value(result, "proxy.proxyStatsMatcher") == {"inclusionRegexps": [".*upstream_rq.*"]}
    assert value(result, "proxy.privateKeyProvider") == {"cryptomb": {"pollDelay": "5ms",
                                                                      "fallback": False}}
    assert value(result, "proxy.dnsCapture") is True
    assert value(result, "proxy.proxyMetadata.EXTRA") == "1"
    assert "proxy.proxyMetadata.ISTIO_META_DNS_CAPTURE" not in result["fields"]
    assert {f["source"]["annotation"] for k, f in result["fields"].items()
            if f["source"]["layer"] == "annotation"} == {"proxy.istio.io/config"}
    assert codes(result) == ["ConcurrencyMismatch"]   # 3 threads against the default 2000m limit


@pytest.mark.parametrize("annotations,where", [
    ({"sidecar.istio.io/proxyCPU": "lots"}, "sidecar.istio.io/proxyCPU"),
    ({"sidecar.istio.io/logLevel": "loud"}, "sidecar.istio.io/logLevel"),
    ({"traffic.sidecar.istio.io/excludeInboundPorts": "80,70000"}, "excludeInboundPorts"),
    ({"traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/33"}, "excludeOutboundIPRanges"),
    ({"traffic.sidecar.istio.io/excludeInboundPorts": "*"}, "excludeInboundPorts"),
    ({"proxy.istio.io/config": "concurrency: [1"}, "proxy.istio.io/config"),
    ({"proxy.istio.io/config": "concurrency: many"}, "proxy.istio.io/config concurrency"),
    ({"proxy.istio.io/config": "terminationDrainDuration: 1.5.5"}, "terminationDrainDuration"),
    ({"proxy.istio.io/config": "- a list"}, "proxy.istio.io/config"),
])
def test_an_invalid_annotation_is_ignored_and_reported_never_fatal(
        annotations: dict[str, str], where: str) -> None:
    configs = [config("ai", "ns", {"proxy": {"logLevel": "info", "concurrency": 4,
                                             "resources": {"requests": {"cpu": "200m"}}}})]
    clean = resolve(configs, pod())
    result = resolve(configs, pod(annotations=annotations))
    invalid = [w for w in result["warnings"] if w["code"] == "InvalidAnnotation"]
    assert len(invalid) == 1 and where in invalid[0]["message"]
    assert result["fields"] == clean["fields"]


def test_one_bad_key_in_proxy_config_drops_only_that_key() -> None:
    result = resolve([], pod(annotations={
        "proxy.istio.io/config": "concurrency: -1\nterminationDrainDuration: 9s"}))
    assert value(result, "lifecycle.terminationDrainDuration") == "9s"
    assert layer(result, "proxy.concurrency") == "default"
    assert codes(result) == ["InvalidAnnotation"]


def test_annotations_meshcfg_wrote_itself_are_not_an_input() -> None:
    annotations = {"sidecar.istio.io/logLevel": "debug",
                   "sidecar.istio.io/proxyCPU": "4",
                   "meshcfg.io/managed-annotations": "sidecar.istio.io/proxyCPU, proxy.istio.io/config",
                   "proxy.istio.io/config": "concurrency: 9"}
    configs = [config("ai", "ns", {"proxy": {"concurrency": 3}})]
    result = resolve(configs, pod(annotations=annotations))
    assert value(result, "proxy.concurrency") == 3
    assert layer(result, "proxy.resources.requests.cpu") == "default"
    assert layer(result, "proxy.logLevel") == "annotation"   # not managed: still the user's
    assert "PartialResourceAnnotations" not in codes(result)
