"""The default layer is the installed injector's values (ConfigMap istio-sidecar-injector,
key values), else the pinned chart's; concurrency left unset is what pilot-agent derives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import codes, config, layer, pod, value

from kubectl_meshcfg.core.model import Origin, parse_injector_values
from kubectl_meshcfg.core.resolve import Resolver

DEMO = {"global": {"proxy": {"resources": {"requests": {"cpu": "10m", "memory": "40Mi"},
                                           "limits": {"cpu": "2000m", "memory": "1024Mi"}},
                             "logLevel": "warning", "componentLogLevel": "misc:error",
                             "includeIPRanges": "*", "excludeIPRanges": "",
                             "includeInboundPorts": "*", "excludeInboundPorts": "",
                             "includeOutboundPorts": "", "excludeOutboundPorts": ""}}}
SOURCE = {"layer": "default", "kind": "ConfigMap", "namespace": "istio-system",
          "name": "istio-sidecar-injector"}


def injector(values: Any, text: str | None = None) -> Any:
    doc = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
           "data": {"values": text if text is not None else json.dumps(values)}}
    return parse_injector_values(doc, Origin("cm.yaml", 1), "istio-system")


def resolve(target: Any, configs: list[Any] | None = None, values: Any = None) -> dict[str, Any]:
    return dict(Resolver(configs or [], injector=injector(values) if values else None)
                .resolve(target))


def test_values_are_the_default_layer_for_both_containers_and_name_the_configmap() -> None:
    result = resolve(pod(), values=DEMO)
    for container in ("proxy", "init"):
        assert value(result, f"{container}.resources.requests.cpu") == "10m"
        assert value(result, f"{container}.resources.requests.memory") == "40Mi"
        assert result["fields"][f"{container}.resources.requests.cpu"]["source"] == SOURCE
    assert result["fields"]["traffic.includeOutboundIPRanges"]["source"] == SOURCE
    # what the values do not carry is Istio's built-in default
    assert result["fields"]["lifecycle.terminationDrainDuration"]["source"] == {"layer": "default"}
    assert result["fields"]["lifecycle.holdApplicationUntilProxyStarts"]["source"] == {
        "layer": "default"}


def test_without_values_the_chart_defaults_apply_to_init_too() -> None:
    result = resolve(pod())
    assert value(result, "init.resources.requests.cpu") == "100m"
    assert value(result, "init.resources.requests.memory") == "128Mi"


def test_values_missing_a_limit_leave_it_unset() -> None:
    values = {"global": {"proxy": {"resources": {"requests": {"cpu": "10m"}}}}}
    result = resolve(pod(), values=values)
    assert value(result, "proxy.resources.requests.cpu") == "10m"
    assert value(result, "proxy.resources.limits.cpu") == "2000m"   # chart default, built in


def test_numbers_in_values_are_quantities() -> None:
    values = {"global": {"proxy": {"resources": {"limits": {"cpu": 3}}}}}
    result = resolve(pod(), values=values)
    assert value(result, "proxy.resources.limits.cpu") == "3"
    assert value(result, "proxy.concurrency") == 3


def test_invalid_values_are_reported_and_ignored() -> None:
    values = {"global": {"proxy": {"logLevel": "loud"}}}
    result = resolve(pod(), values=values)
    assert value(result, "proxy.logLevel") == "warning"
    assert "InvalidInjectorValues" in codes(result)


@pytest.mark.parametrize(("limit", "derived"), [("2000m", 2), ("500m", 1), ("1", 1),
                                                ("2.5", 3), ("4", 4)])
def test_unset_concurrency_is_derived_from_the_cpu_limit(limit: str, derived: int) -> None:
    spc = config("ai", "ns", {"proxy": {"resources": {"limits": {"cpu": limit}}}})
    result = resolve(pod(), [spc])
    assert value(result, "proxy.concurrency") == derived
    assert layer(result, "proxy.concurrency") == "default"
    assert "ConcurrencyMismatch" not in codes(result)


def test_a_cpu_limit_annotation_changes_the_derived_concurrency() -> None:
    target = pod(annotations={"sidecar.istio.io/proxyCPULimit": "3"})
    assert value(resolve(target), "proxy.concurrency") == 3


def test_set_concurrency_keeps_the_derived_default_below_it_and_still_warns() -> None:
    spc = config("ai", "ns", {"proxy": {"concurrency": 4,
                                        "resources": {"limits": {"cpu": "1"}}}})
    result = resolve(pod(), [spc])
    field = result["fields"]["proxy.concurrency"]
    assert field["value"] == 4
    assert field["overridden"] == [{"value": 1, "source": {"layer": "default"}}]
    assert "ConcurrencyMismatch" in codes(result)


def test_the_same_stack_derives_per_target() -> None:
    """Derived values are cached per (field, limit): two targets sharing a stack but not
    a limit must not share the result."""
    resolver = Resolver([])
    one = resolver.resolve(pod(name="a", annotations={"sidecar.istio.io/proxyCPULimit": "3"}))
    two = resolver.resolve(pod(name="b"))
    assert (value(dict(one), "proxy.concurrency"), value(dict(two), "proxy.concurrency")) == (3, 2)
