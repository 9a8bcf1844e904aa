"""Every warning code of SPEC section 4, firing exactly when it should."""

from __future__ import annotations

import pytest
from builders import codes, config, pod, resolve


def ns(spec: dict[str, object]) -> list[object]:
    return [config("ai", "ns", spec)]


@pytest.mark.parametrize("drain,grace,fires", [
    ("30s", None, True),      # default grace is 30 s: equal is already too late
    ("29s", None, False),
    ("15s", 10, True),
    ("15s", 16, False),
    ("1m", 45, True),
    ("500ms", 0, True),
])
def test_drain_exceeds_grace_period(drain: str, grace: int | None, fires: bool) -> None:
    result = resolve(ns({"lifecycle": {"terminationDrainDuration": drain}}), pod(grace=grace))
    assert ("DrainExceedsGracePeriod" in codes(result)) is fires


@pytest.mark.parametrize("concurrency,cpu_limit,fires", [
    (5, "5", False), (2, "5", True), (5, "4500m", False), (4, "4500m", True),
    (0, "5", False), (1, "100m", False), (2, "100m", True), (2, "2000m", False),
])
def test_concurrency_mismatch(concurrency: int, cpu_limit: str, fires: bool) -> None:
    spec = {"proxy": {"concurrency": concurrency, "resources": {"limits": {"cpu": cpu_limit}}}}
    assert ("ConcurrencyMismatch" in codes(resolve(ns(spec), pod()))) is fires


@pytest.mark.parametrize("container,resources,fires", [
    ("proxy", {"requests": {"cpu": "3"}, "limits": {"cpu": "2"}}, True),
    ("proxy", {"requests": {"memory": "2Gi"}, "limits": {"memory": "1024Mi"}}, True),
    ("proxy", {"requests": {"memory": "1Gi"}, "limits": {"memory": "1024Mi"}}, False),
    ("init", {"requests": {"cpu": "200m"}, "limits": {"cpu": "100m"}}, True),
    ("init", {"requests": {"cpu": "100m"}, "limits": {"cpu": "0.1"}}, False),
])
def test_requests_exceed_limits(container: str, resources: dict[str, object], fires: bool) -> None:
    spec = {container: {"resources": resources}}
    if container == "proxy":
        spec["proxy"]["concurrency"] = 0   # type: ignore[index]
    result = resolve(ns(spec), pod())
    assert ("RequestsExceedLimits" in codes(result)) is fires
    if fires:
        name = "istio-proxy" if container == "proxy" else "istio-init"
        assert name in next(w["message"] for w in result["warnings"]
                            if w["code"] == "RequestsExceedLimits")


def test_requests_exceed_limits_across_layers() -> None:
    configs = ns({"proxy": {"resources": {"limits": {"memory": "256Mi"}}}})
    result = resolve(configs, pod(annotations={"sidecar.istio.io/proxyMemory": "512Mi"}))
    assert "RequestsExceedLimits" in codes(result)


@pytest.mark.parametrize("traffic,fires", [
    ({"includeInboundPorts": "80,8080", "excludeInboundPorts": "8080"}, True),
    ({"includeInboundPorts": "*", "excludeInboundPorts": "8080"}, False),
    ({"includeOutboundPorts": "443", "excludeOutboundPorts": "443,80"}, True),
    ({"includeOutboundPorts": "443", "excludeOutboundPorts": "80"}, False),
    ({"includeInboundPorts": "80", "excludeOutboundPorts": "80"}, False),
])
def test_port_both_included_and_excluded(traffic: dict[str, str], fires: bool) -> None:
    result = resolve(ns({"traffic": traffic}), pod())
    assert ("PortBothIncludedAndExcluded" in codes(result)) is fires


def test_port_overlap_across_layers_names_the_ports() -> None:
    configs = ns({"traffic": {"excludeInboundPorts": "9090, 8080"}})
    target = pod(annotations={"traffic.sidecar.istio.io/includeInboundPorts": "8080,9090,80"})
    warning = next(w for w in resolve(configs, target)["warnings"]
                   if w["code"] == "PortBothIncludedAndExcluded")
    assert "8080,9090" in warning["message"] and "inbound" in warning["message"]


def test_partial_resource_annotations_lists_which_were_set() -> None:
    result = resolve([], pod(annotations={"sidecar.istio.io/proxyCPU": "1",
                                          "sidecar.istio.io/proxyMemoryLimit": "1Gi"}))
    warning = next(w for w in result["warnings"] if w["code"] == "PartialResourceAnnotations")
    assert "proxyCPU" in warning["message"] and "proxyMemoryLimit" in warning["message"]


def test_pre_stop_and_drain_agent_from_different_layers() -> None:
    configs = [config("ai", "ns", {"lifecycle": {"drainAgent": {"enabled": True}}}),
               config("ai", "wl", {"selector": {"matchLabels": {"a": "b"}},
                                   "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}}})]
    assert "PreStopAndDrainAgent" in codes(resolve(configs, pod(labels={"a": "b"})))
    assert "PreStopAndDrainAgent" not in codes(resolve(configs, pod()))


def test_custom_post_start_replaces_the_hold_hook() -> None:
    spec = {"lifecycle": {"holdApplicationUntilProxyStarts": True,
                          "postStart": {"exec": {"command": ["/bin/true"]}}}}
    assert "PostStartReplacesHold" in codes(resolve(ns(spec), pod()))
    del spec["lifecycle"]["holdApplicationUntilProxyStarts"]
    assert "PostStartReplacesHold" not in codes(resolve(ns(spec), pod()))


def test_a_clean_config_has_no_warnings() -> None:
    spec = {"proxy": {"concurrency": 2, "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}},
            "lifecycle": {"terminationDrainDuration": "10s"}}
    assert codes(resolve(ns(spec), pod(grace=30))) == []


@pytest.mark.parametrize("drain,grace,fires", [("15s", 17, True), ("15s", 18, False),
                                               ("5s", None, False), ("28s", None, True)])
def test_drain_agent_without_budget(drain: str, grace: int | None, fires: bool) -> None:
    spec = {"lifecycle": {"terminationDrainDuration": drain, "drainAgent": {"enabled": True}}}
    assert ("DrainAgentWithoutBudget" in codes(resolve(ns(spec), pod(grace=grace)))) is fires
    spec["lifecycle"]["drainAgent"] = {"enabled": False}
    assert "DrainAgentWithoutBudget" not in codes(resolve(ns(spec), pod(grace=grace)))
