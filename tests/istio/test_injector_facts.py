"""Facts about Istio's real sidecar injector that meshcfg's render relies on.

Every test runs ``istioctl kube-inject`` (built from the pinned istio.io/istio module,
inputs rendered from that version's charts) and asserts on the injected pod.
docs/istio-injection-facts.md lists these facts, one line each, with the test that
proves it; keep the two in step.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import injector as inj
from .injector import Injector, InjectorError, istio_version

pytestmark = pytest.mark.istio

PodFactory = Callable[..., dict[str, Any]]

ALL_FOUR = {
    "sidecar.istio.io/proxyCPU": "500m",
    "sidecar.istio.io/proxyMemory": "256Mi",
    "sidecar.istio.io/proxyCPULimit": "5",
    "sidecar.istio.io/proxyMemoryLimit": "1Gi",
}
ALL_FOUR_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"cpu": "5", "memory": "1Gi"},
}
CHART_DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "2", "memory": "1Gi"},  # canonical form of 2000m/1024Mi
}


def proxy_config_annotation(**fields: Any) -> dict[str, str]:
    return {"proxy.istio.io/config": yaml.safe_dump(fields, sort_keys=False)}


def one(inj: Injector, manifest: dict[str, Any]) -> dict[str, Any]:
    return inj.inject_one(manifest)


def test_inputs_are_the_pinned_charts_own_config_maps(istio_injector: Injector) -> None:
    version = istio_version()
    gomodcache = subprocess.run(["go", "env", "GOMODCACHE"], check=True, capture_output=True,
                                text=True).stdout.strip()
    chart = (Path(gomodcache) / f"istio.io/istio@{version}" / "manifests/charts/istio-control"
             / "istio-discovery/files/injection-template.yaml")
    config = yaml.safe_load(istio_injector.inputs.config.read_text())
    assert config["templates"]["sidecar"].strip() == chart.read_text().strip()
    assert config["policy"] == "enabled"
    values = json.loads(istio_injector.inputs.values.read_text())
    assert values["global"]["proxy"]["resources"]["limits"] == {"cpu": "2000m", "memory": "1024Mi"}
    mesh = istio_injector.inputs.mesh_config()
    assert mesh["rootNamespace"] == "istio-system"
    assert "discoveryAddress" in mesh["defaultConfig"]


# --- (a) resources ------------------------------------------------------------------


def test_default_resources_come_from_chart_values_on_both_containers(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod())
    assert istio_injector.resources(istio_injector.proxy(pod)) == CHART_DEFAULT_RESOURCES
    # istio-init renders the same "resources" template as istio-proxy
    assert istio_injector.resources(istio_injector.init(pod)) == CHART_DEFAULT_RESOURCES


def test_only_proxy_cpu_drops_every_other_resource_value(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({"sidecar.istio.io/proxyCPU": "300m"}))
    only_cpu = {"requests": {"cpu": "300m"}}
    assert istio_injector.resources(istio_injector.proxy(pod)) == only_cpu
    assert istio_injector.resources(istio_injector.init(pod)) == only_cpu


def test_only_limits_drop_the_requests(istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({"sidecar.istio.io/proxyCPULimit": "3",
                                        "sidecar.istio.io/proxyMemoryLimit": "2Gi"}))
    assert istio_injector.resources(istio_injector.proxy(pod)) == {
        "limits": {"cpu": "3", "memory": "2Gi"}}


def test_requests_above_limits_are_not_checked_by_the_injector(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({"sidecar.istio.io/proxyCPU": "3",
                                        "sidecar.istio.io/proxyCPULimit": "1"}))
    assert istio_injector.resources(istio_injector.proxy(pod)) == {
        "requests": {"cpu": "3"}, "limits": {"cpu": "1"}}


def test_all_four_resource_annotations_set_exactly_those_on_proxy_and_init(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(ALL_FOUR))
    assert istio_injector.resources(istio_injector.proxy(pod)) == ALL_FOUR_RESOURCES
    assert istio_injector.resources(istio_injector.init(pod)) == ALL_FOUR_RESOURCES


def test_invalid_resource_annotation_fails_injection(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    with pytest.raises(InjectorError, match="proxyCPU"):
        istio_injector.inject(make_pod({"sidecar.istio.io/proxyCPU": "lots"}))


# --- (b) proxy.istio.io/config -------------------------------------------------------


def test_concurrency_is_carried_in_proxy_config_not_in_args(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(proxy_config_annotation(concurrency=5)))
    proxy = istio_injector.proxy(pod)
    assert istio_injector.proxy_config(pod)["concurrency"] == 5
    assert not any("concurrency" in a for a in istio_injector.args(proxy))


def test_concurrency_zero_is_kept_and_unset_is_absent(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    zero = one(istio_injector, make_pod(proxy_config_annotation(concurrency=0)))
    assert istio_injector.proxy_config(zero)["concurrency"] == 0
    unset = one(istio_injector, make_pod())
    assert "concurrency" not in istio_injector.proxy_config(unset)


def test_proxy_config_fields_end_up_in_proxy_config_env(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    fields = {
        "concurrency": 5,
        "terminationDrainDuration": "15s",
        "holdApplicationUntilProxyStarts": True,
        "proxyStatsMatcher": {"inclusionPrefixes": ["cluster.outbound"],
                              "inclusionSuffixes": ["upstream_rq_timeout"],
                              "inclusionRegexps": [".*circuit_breakers.*"]},
        "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true", "FOO": "bar"},
        "privateKeyProvider": {"cryptomb": {"pollDelay": "10ms", "fallback": True}},
    }
    pod = one(istio_injector, make_pod(proxy_config_annotation(**fields)))
    pc = istio_injector.proxy_config(pod)
    assert pc["concurrency"] == 5
    assert pc["terminationDrainDuration"] == "15s"
    assert pc["holdApplicationUntilProxyStarts"] is True
    assert pc["proxyStatsMatcher"] == fields["proxyStatsMatcher"]
    assert pc["proxyMetadata"] == {"ISTIO_META_DNS_CAPTURE": "true", "FOO": "bar"}
    # durations come back in protobuf JSON form: 10ms -> "0.010s" (15s stays "15s")
    assert pc["privateKeyProvider"] == {"cryptomb": {"pollDelay": "0.010s", "fallback": True}}
    # proxyMetadata also becomes plain env on istio-proxy (and on istio-init)
    proxy_env = istio_injector.env(istio_injector.proxy(pod))
    assert proxy_env["ISTIO_META_DNS_CAPTURE"] == "true"
    assert proxy_env["FOO"] == "bar"
    assert istio_injector.env(istio_injector.init(pod))["FOO"] == "bar"


def test_default_valued_fields_are_omitted_from_proxy_config_env(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(proxy_config_annotation(terminationDrainDuration="5s")))
    assert "terminationDrainDuration" not in istio_injector.proxy_config(pod)


def test_json_annotation_is_accepted(istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(
        {"proxy.istio.io/config": json.dumps({"concurrency": 3})}))
    assert istio_injector.proxy_config(pod)["concurrency"] == 3


def test_invalid_proxy_config_annotation_fails_injection(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    with pytest.raises(InjectorError):
        istio_injector.inject(make_pod({"proxy.istio.io/config": "concurrency: many"}))


@pytest.mark.parametrize("annotation, message", [
    ('holdApplicationUntilProxyStarts: "true"', "cannot unmarshal string into Go value of type bool"),
    ("proxyMetadata: {ISTIO_META_DNS_CAPTURE: true}", "cannot unmarshal bool"),
    ("terminationDrainDuration: 15", "cannot unmarshal number"),
    ("privateKeyProvider: {cryptomb: {pollDelay: 0s}}", "pollDelay must be non zero"),
])
def test_proxy_config_values_of_the_wrong_type_fail_injection(
        istio_injector: Injector, make_pod: PodFactory, annotation: str, message: str) -> None:
    with pytest.raises(InjectorError, match=message):
        istio_injector.inject(make_pod({"proxy.istio.io/config": annotation}))


def test_proxy_config_lenient_parsing(istio_injector: Injector, make_pod: PodFactory) -> None:
    # a quoted integer is accepted for concurrency ...
    quoted = one(istio_injector, make_pod({"proxy.istio.io/config": 'concurrency: "3"'}))
    assert istio_injector.proxy_config(quoted)["concurrency"] == 3
    # ... and an unknown field is silently dropped, the rest still applies
    unknown = one(istio_injector, make_pod({"proxy.istio.io/config": "bogus: 1\nconcurrency: 4"}))
    assert istio_injector.proxy_config(unknown) == {"concurrency": 4}


def test_mesh_default_config_is_merged_under_the_annotation(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    mesh = istio_injector.with_mesh({"defaultConfig": {
        "concurrency": 3,
        "terminationDrainDuration": "20s",
        "proxyStatsMatcher": {"inclusionPrefixes": ["mesh.prefix"]},
        "proxyMetadata": {"FROM_MESH": "1", "SHARED": "mesh"},
    }})
    plain = one(mesh, make_pod())
    pc = mesh.proxy_config(plain)
    assert pc["concurrency"] == 3
    assert pc["terminationDrainDuration"] == "20s"

    annotated = one(mesh, make_pod(proxy_config_annotation(
        concurrency=7,
        proxyStatsMatcher={"inclusionSuffixes": ["pod.suffix"]},
        proxyMetadata={"SHARED": "pod", "FROM_POD": "1"},
    )))
    pc = mesh.proxy_config(annotated)
    assert pc["concurrency"] == 7
    assert pc["terminationDrainDuration"] == "20s"           # untouched field kept
    # a top-level field set by the annotation replaces the mesh's wholesale ...
    assert pc["proxyStatsMatcher"] == {"inclusionSuffixes": ["pod.suffix"]}
    # ... except proxyMetadata, merged key by key
    assert pc["proxyMetadata"] == {"FROM_MESH": "1", "SHARED": "pod", "FROM_POD": "1"}


# --- (c) traffic capture -------------------------------------------------------------


def test_default_capture_args(istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod())
    flags = istio_injector.capture_args(pod)
    assert flags["-i"] == "*"
    assert flags["-x"] == ""
    assert flags["-b"] == "*"
    assert flags["-d"] == "15090,15021,15020"
    assert "-q" not in flags
    assert "-o" not in flags


def test_traffic_annotations_become_istio_init_capture_args(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({
        "traffic.sidecar.istio.io/includeInboundPorts": "8080,9090",
        "traffic.sidecar.istio.io/excludeInboundPorts": "9100,9200",
        "traffic.sidecar.istio.io/includeOutboundPorts": "443",
        "traffic.sidecar.istio.io/excludeOutboundPorts": "3306,5432",
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8,172.16.0.0/12",
        "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.96.0.0/12",
    }))
    assert istio_injector.capture_settings(pod) == {
        "includeOutboundIPRanges": "10.0.0.0/8,172.16.0.0/12",
        "excludeOutboundIPRanges": "10.96.0.0/12",
        "includeInboundPorts": "8080,9090",
        # 15090,15021 first, then the annotation's ports, then the status port 15020
        "excludeInboundPorts": "15090,15021,9100,9200,15020",
        "includeOutboundPorts": "443",
        "excludeOutboundPorts": "3306,5432",
    }


def test_empty_exclude_outbound_ports_annotation_still_emits_the_flag(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({"traffic.sidecar.istio.io/excludeOutboundPorts": ""}))
    assert istio_injector.capture_args(pod)["-o"] == ""


def test_invalid_port_annotation_fails_injection(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    with pytest.raises(InjectorError):
        istio_injector.inject(make_pod({"traffic.sidecar.istio.io/excludeInboundPorts": "http"}))


def test_invalid_cidr_annotation_fails_injection(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    with pytest.raises(InjectorError, match="excludeOutboundIPRanges"):
        istio_injector.inject(make_pod(
            {"traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.0.0.0/33"}))


def test_empty_include_lists_switch_capture_off(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({
        "traffic.sidecar.istio.io/includeInboundPorts": "",
        "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
    }))
    flags = istio_injector.capture_args(pod)
    assert flags["-b"] == ""
    assert flags["-i"] == ""


def test_spaces_in_exclude_inbound_ports_are_dropped(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({"traffic.sidecar.istio.io/excludeInboundPorts": "80, 90"}))
    assert istio_injector.capture_args(pod)["-d"] == "15090,15021,80,90,15020"


# --- (d) istio-proxy / istio-init overrides -----------------------------------------


def test_istio_proxy_override_is_strategic_merged(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    baseline = one(istio_injector, make_pod())
    injected_image = istio_injector.proxy(baseline)["image"]
    prestop = {"exec": {"command": ["/bin/sleep", "10"]}}
    override = {
        "name": "istio-proxy",
        "image": "auto",
        "lifecycle": {"preStop": prestop},
        "volumeMounts": [{"name": "meshcfg-bin", "mountPath": "/meshcfg"}],
        "env": [{"name": "MESHCFG_DRAIN_MIN", "value": "2s"}],
    }
    pod = one(istio_injector, make_pod(
        containers=[{"name": "app", "image": "registry.example/app:1"}, override],
        spec={"volumes": [{"name": "meshcfg-bin", "emptyDir": {}}]},
    ))
    proxy = istio_injector.proxy(pod)
    assert proxy["image"] == injected_image
    assert istio_injector.lifecycle(proxy) == {"preStop": prestop}
    mounts = {m["name"]: m["mountPath"] for m in proxy["volumeMounts"]}
    assert mounts["meshcfg-bin"] == "/meshcfg"
    assert mounts["istio-envoy"] == "/etc/istio/proxy"      # injected mounts kept
    proxy_env = istio_injector.env(proxy)
    assert proxy_env["MESHCFG_DRAIN_MIN"] == "2s"
    assert "PROXY_CONFIG" in proxy_env                       # injected env kept
    # still exactly one istio-proxy, placed last (no holdApplicationUntilProxyStarts)
    assert istio_injector.container_names(pod) == ["app", "istio-proxy"]
    # the injector records the override so that re-injection can re-apply it
    recorded = json.loads(istio_injector.pod_annotations(pod)["proxy.istio.io/overrides"])
    assert recorded["containers"][0]["name"] == "istio-proxy"


def test_istio_proxy_override_resources_merge_key_by_key_and_leave_init_alone(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(containers=[
        {"name": "app", "image": "registry.example/app:1"},
        {"name": "istio-proxy", "image": "auto", "resources": {"limits": {"cpu": "3"}}},
    ]))
    assert istio_injector.resources(istio_injector.proxy(pod)) == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "3", "memory": "1Gi"},
    }
    assert istio_injector.resources(istio_injector.init(pod)) == CHART_DEFAULT_RESOURCES


def test_explicit_image_in_override_replaces_the_injected_image(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(
        containers=[{"name": "app", "image": "registry.example/app:1"},
                    {"name": "istio-proxy", "image": "registry.example/proxy:1"}],
        init_containers=[{"name": "istio-init", "resources": {"limits": {"cpu": "100m"}}}],
    ))
    assert istio_injector.proxy(pod)["image"] == "registry.example/proxy:1"
    # an override without image (or with "auto") keeps the injected one
    assert istio_injector.init(pod)["image"] != ""
    assert istio_injector.init(pod)["image"] == one(istio_injector, make_pod()) \
        ["spec"]["initContainers"][0]["image"]


def test_istio_init_override_sets_the_init_resources(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    init_res = {"requests": {"cpu": "10m", "memory": "10Mi"},
                "limits": {"cpu": "100m", "memory": "50Mi"}}
    pod = one(istio_injector, make_pod(
        ALL_FOUR,
        init_containers=[{"name": "istio-init", "image": "auto", "resources": init_res}],
    ))
    assert istio_injector.resources(istio_injector.init(pod)) == init_res
    assert istio_injector.resources(istio_injector.proxy(pod)) == ALL_FOUR_RESOURCES
    init = istio_injector.init(pod)
    assert init["args"][0] == "istio-iptables"                # the injected init, not a stub
    assert istio_injector.container_names(pod, "initContainers") == ["istio-init"]


def test_partial_istio_init_override_merges_key_by_key(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(
        ALL_FOUR,
        init_containers=[{"name": "istio-init", "image": "auto",
                          "resources": {"limits": {"cpu": "100m"}}}],
    ))
    assert istio_injector.resources(istio_injector.init(pod)) == {
        "requests": {"cpu": "500m", "memory": "256Mi"},
        "limits": {"cpu": "100m", "memory": "1Gi"},
    }


# --- (e) log levels ------------------------------------------------------------------


def test_log_level_annotations_become_istio_proxy_args(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    default = istio_injector.proxy(one(istio_injector, make_pod()))
    assert istio_injector.flag_value(default, "--proxyLogLevel") == "warning"
    assert istio_injector.flag_value(default, "--proxyComponentLogLevel") == "misc:error"

    pod = one(istio_injector, make_pod({
        "sidecar.istio.io/logLevel": "debug",
        "sidecar.istio.io/componentLogLevel": "misc:error,upstream:debug",
    }))
    proxy = istio_injector.proxy(pod)
    assert istio_injector.flag_value(proxy, "--proxyLogLevel") == "debug"
    assert istio_injector.flag_value(proxy, "--proxyComponentLogLevel") == \
        "misc:error,upstream:debug"


def test_log_levels_are_not_validated(istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod({"sidecar.istio.io/logLevel": "bogus",
                                        "sidecar.istio.io/componentLogLevel": "also-bogus"}))
    proxy = istio_injector.proxy(pod)
    assert istio_injector.flag_value(proxy, "--proxyLogLevel") == "bogus"
    assert istio_injector.flag_value(proxy, "--proxyComponentLogLevel") == "also-bogus"


# --- (f) holdApplicationUntilProxyStarts and lifecycle ----------------------------------


def test_hold_application_puts_istio_proxy_first_with_post_start_wait(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod(
        proxy_config_annotation(holdApplicationUntilProxyStarts=True)))
    assert istio_injector.container_names(pod) == ["istio-proxy", "app"]
    assert istio_injector.lifecycle(istio_injector.proxy(pod)) == {
        "postStart": {"exec": {"command": ["pilot-agent", "wait"]}}}


def test_without_hold_istio_proxy_is_last_and_has_no_lifecycle(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    pod = one(istio_injector, make_pod())
    assert istio_injector.container_names(pod) == ["app", "istio-proxy"]
    assert istio_injector.lifecycle(istio_injector.proxy(pod)) == {}


def test_custom_post_start_exec_replaces_pilot_agent_wait(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    custom = {"exec": {"command": ["/meshcfg/wait", "--then", "ready"]}}
    pod = one(istio_injector, make_pod(
        proxy_config_annotation(holdApplicationUntilProxyStarts=True),
        containers=[{"name": "app", "image": "registry.example/app:1"},
                    {"name": "istio-proxy", "image": "auto",
                     "lifecycle": {"postStart": custom}}],
    ))
    assert istio_injector.container_names(pod) == ["istio-proxy", "app"]
    assert istio_injector.lifecycle(istio_injector.proxy(pod)) == {"postStart": custom}


def test_custom_post_start_of_another_handler_type_is_merged_with_the_wait_exec(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    custom = {"httpGet": {"path": "/ready", "port": 15021}}
    pod = one(istio_injector, make_pod(
        proxy_config_annotation(holdApplicationUntilProxyStarts=True),
        containers=[{"name": "app", "image": "registry.example/app:1"},
                    {"name": "istio-proxy", "image": "auto",
                     "lifecycle": {"postStart": custom}}],
    ))
    post_start = istio_injector.lifecycle(istio_injector.proxy(pod))["postStart"]
    # strategic merge keeps both handlers: an invalid hook the API server would reject
    assert post_start["exec"] == {"command": ["pilot-agent", "wait"]}
    assert post_start["httpGet"]["path"] == "/ready"


def test_pre_stop_override_with_hold_keeps_the_wait_post_start(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    prestop = {"exec": {"command": ["/meshcfg/meshcfg-drain"]}}
    pod = one(istio_injector, make_pod(
        proxy_config_annotation(holdApplicationUntilProxyStarts=True),
        containers=[{"name": "app", "image": "registry.example/app:1"},
                    {"name": "istio-proxy", "image": "auto",
                     "lifecycle": {"preStop": prestop}}],
    ))
    assert istio_injector.lifecycle(istio_injector.proxy(pod)) == {
        "postStart": {"exec": {"command": ["pilot-agent", "wait"]}},
        "preStop": prestop,
    }


def test_hold_application_from_mesh_default_config(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    mesh = istio_injector.with_mesh({"defaultConfig": {"holdApplicationUntilProxyStarts": True}})
    pod = one(mesh, make_pod())
    assert mesh.container_names(pod) == ["istio-proxy", "app"]
    # and a pod can switch it off again through the annotation
    off = one(mesh, make_pod(proxy_config_annotation(holdApplicationUntilProxyStarts=False)))
    assert mesh.container_names(off) == ["app", "istio-proxy"]


def test_native_sidecar_mode_moves_istio_proxy_to_init_containers(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    native = istio_injector.with_native_sidecars()
    prestop = {"exec": {"command": ["/meshcfg/meshcfg-drain"]}}
    plain = one(native, make_pod(proxy_config_annotation(holdApplicationUntilProxyStarts=True)))
    assert native.container_names(plain) == ["app"]
    assert native.container_names(plain, "initContainers") == ["istio-init", "istio-proxy"]
    proxy = native.proxy(plain)
    assert proxy["restartPolicy"] == "Always"
    # no postStart wait with native sidecars; a drain preStop instead
    assert native.lifecycle(proxy)["preStop"]["exec"]["command"][:2] == \
        ["pilot-agent", "request"]
    assert "postStart" not in native.lifecycle(proxy)

    overridden = one(native, make_pod(
        containers=[{"name": "app", "image": "registry.example/app:1"},
                    {"name": "istio-proxy", "image": "auto",
                     "lifecycle": {"preStop": prestop}}],
    ))
    # the override written under containers is moved to the native sidecar
    assert native.container_names(overridden) == ["app"]
    assert native.lifecycle(native.proxy(overridden)) == {"preStop": prestop}


def test_init_container_order_for_an_agent_installer(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    installer = {"name": "meshcfg-drain-install", "image": "registry.example/drain:1",
                 "command": ["cp", "/meshcfg-drain", "/meshcfg/"],
                 "volumeMounts": [{"name": "meshcfg-bin", "mountPath": "/meshcfg"}]}
    manifest = make_pod(
        containers=[{"name": "app", "image": "registry.example/app:1"},
                    {"name": "istio-proxy", "image": "auto",
                     "volumeMounts": [{"name": "meshcfg-bin", "mountPath": "/meshcfg"}]}],
        init_containers=[installer],
        spec={"volumes": [{"name": "meshcfg-bin", "emptyDir": {}}]},
    )
    classic = one(istio_injector, manifest)
    # classic sidecar: istio-init is moved last, so user init containers run un-captured
    assert istio_injector.container_names(classic, "initContainers") == \
        ["meshcfg-drain-install", "istio-init"]
    native = istio_injector.with_native_sidecars()
    pod = one(native, manifest)
    # native sidecar: istio-init, then istio-proxy, then the user's init containers
    assert native.container_names(pod, "initContainers") == \
        ["istio-init", "istio-proxy", "meshcfg-drain-install"]
    mounts = {m["name"] for m in native.proxy(pod)["volumeMounts"]}
    assert "meshcfg-bin" in mounts


# --- (g) workloads --------------------------------------------------------------------


def test_deployment_is_injected_through_its_pod_template(
        istio_injector: Injector, make_deployment: PodFactory) -> None:
    deploy = one(istio_injector, make_deployment({
        **ALL_FOUR,
        **proxy_config_annotation(concurrency=5),
        "traffic.sidecar.istio.io/excludeInboundPorts": "9100",
    }))
    assert deploy["kind"] == "Deployment"
    assert istio_injector.container_names(deploy) == ["app", "istio-proxy"]
    assert istio_injector.resources(istio_injector.proxy(deploy)) == ALL_FOUR_RESOURCES
    assert istio_injector.resources(istio_injector.init(deploy)) == ALL_FOUR_RESOURCES
    assert istio_injector.proxy_config(deploy)["concurrency"] == 5
    assert istio_injector.capture_args(deploy)["-d"] == "15090,15021,9100,15020"
    annotations = istio_injector.pod_annotations(deploy)
    assert "sidecar.istio.io/status" in annotations
    proxy_env = istio_injector.env(istio_injector.proxy(deploy))
    assert proxy_env["ISTIO_META_WORKLOAD_NAME"] == "app"
    assert proxy_env["ISTIO_META_OWNER"] == \
        "kubernetes://apis/apps/v1/namespaces/ai/deployments/app"


def test_several_documents_are_injected_in_order(
        istio_injector: Injector, make_pod: PodFactory, make_deployment: PodFactory) -> None:
    objs = istio_injector.inject([make_deployment(name="one"), make_pod(name="two")])
    assert [o["kind"] for o in objs] == ["Deployment", "Pod"]
    assert all("istio-proxy" in istio_injector.container_names(o) for o in objs)


def test_the_node_pods_istio_init_is_the_one_stock_istio_injects(
        istio_injector: Injector, make_pod: PodFactory) -> None:
    """scripts/node/istio_init.py runs the real pilot-agent with these arguments and this
    security context on the test node: they must be what the injector gives a plain pod."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from node import istio_init

    init = inj.init_container(one(istio_injector, make_pod()))
    ours = istio_init.container("image", ["cmd"], [])
    assert init["args"] == list(istio_init.ARGS)
    for key in ("runAsUser", "runAsGroup", "runAsNonRoot", "allowPrivilegeEscalation",
                "privileged", "capabilities"):
        assert ours["securityContext"][key] == init["securityContext"][key], key
