"""What `kubectl meshcfg render` writes ends up in the pod Istio's real injector produces.

Each test resolves SidecarProxyConfigs offline, renders the target with `--merge`, runs
`istioctl kube-inject` (built from the pinned istio.io/istio) on the result, and asserts on
the injected sidecar.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from drain_agent import cli as agent_cli
from kubectl_meshcfg.cli import cli
from kubectl_meshcfg.core.formats import parse_quantity

from . import injector as inj

pytestmark = pytest.mark.istio
WORKLOAD = {"matchLabels": {"app": "app"}}


def spc(name: str, spec: dict[str, Any], namespace: str = "ai", created: str = "2026-01-01T00:00:00Z"
        ) -> dict[str, Any]:
    return {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
            "spec": spec}


def render_and_inject(tmp_path: Path, injector: inj.Injector, docs: list[dict[str, Any]],
                      *extra: str) -> dict[str, Any]:
    (tmp_path / "in.yaml").write_text(yaml.safe_dump_all(docs))
    result = CliRunner().invoke(cli, ["render", "deployment/app", "-n", "ai", "--local", "-f",
                                      str(tmp_path / "in.yaml"), "--merge", "-o", "json", *extra])
    assert result.exit_code == 0, result.stderr
    return injector.inject_one(json.loads(result.stdout))


def quantities(resources: dict[str, dict[str, str]]) -> dict[str, dict[str, Decimal | None]]:
    return {group: {res: parse_quantity(q) for res, q in values.items()}
            for group, values in resources.items()}


def test_proxy_and_init_resources_each_get_their_own_values(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    config = spc("sizes", {
        "proxy": {"resources": {"requests": {"cpu": "300m", "memory": "200Mi"},
                                "limits": {"cpu": "3", "memory": "1Gi"}}, "concurrency": 3},
        "init": {"resources": {"requests": {"cpu": "20m", "memory": "20Mi"},
                               "limits": {"cpu": "200m", "memory": "64Mi"}}}})
    pod = render_and_inject(tmp_path, istio_injector, [config, make_deployment()])
    assert quantities(inj.resources(inj.proxy_container(pod))) == quantities(
        {"requests": {"cpu": "300m", "memory": "200Mi"}, "limits": {"cpu": "3", "memory": "1Gi"}})
    assert quantities(inj.resources(inj.init_container(pod))) == quantities(
        {"requests": {"cpu": "20m", "memory": "20Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}})


def test_defaults_alone_give_spec_defaults_on_both_containers(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    pod = render_and_inject(tmp_path, istio_injector, [make_deployment()])
    assert quantities(inj.resources(inj.proxy_container(pod))) == quantities(
        {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2000m", "memory": "1024Mi"}})
    # global.proxy.resources serves istio-init too (SPEC section 2's default layer)
    assert quantities(inj.resources(inj.init_container(pod))) == quantities(
        {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "2000m", "memory": "1024Mi"}})


def test_proxy_config_fields_reach_proxy_config_env(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    config = spc("proxy", {
        "proxy": {"concurrency": 5, "resources": {"limits": {"cpu": "5"}},
                  "proxyStatsMatcher": {"inclusionPrefixes": ["cluster.outbound"],
                                        "inclusionRegexps": [".*upstream_rq.*"]},
                  "privateKeyProvider": {"cryptomb": {"pollDelay": "10ms", "fallback": True}},
                  "dnsCapture": True, "proxyMetadata": {"EXTRA_FLAG": "on"}},
        "lifecycle": {"terminationDrainDuration": "15s", "holdApplicationUntilProxyStarts": True}})
    pod = render_and_inject(tmp_path, istio_injector, [config, make_deployment()])
    proxy_config = inj.proxy_config(pod)
    assert proxy_config["concurrency"] == 5
    assert proxy_config["terminationDrainDuration"] == "15s"
    assert proxy_config["holdApplicationUntilProxyStarts"] is True
    assert proxy_config["proxyStatsMatcher"] == {"inclusionPrefixes": ["cluster.outbound"],
                                                 "inclusionRegexps": [".*upstream_rq.*"]}
    assert proxy_config["privateKeyProvider"] == {"cryptomb": {"pollDelay": "0.010s",
                                                               "fallback": True}}
    assert proxy_config["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"] == "true"
    assert proxy_config["proxyMetadata"]["EXTRA_FLAG"] == "on"
    assert inj.container_names(pod)[0] == "istio-proxy"    # hold puts the proxy first


def test_traffic_fields_become_istio_init_capture_args(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    config = spc("traffic", {"selector": WORKLOAD, "traffic": {
        "includeInboundPorts": "*", "excludeInboundPorts": "8080, 9090",
        "includeOutboundPorts": "443", "excludeOutboundPorts": "3306",
        "includeOutboundIPRanges": "", "excludeOutboundIPRanges": "10.96.0.0/12"}})
    pod = render_and_inject(tmp_path, istio_injector, [config, make_deployment()])
    expected = {"-b": "*", "-d": "15090,15021,8080,9090,15020", "-q": "443", "-o": "3306",
                "-i": "", "-x": "10.96.0.0/12"}
    assert {flag: inj.capture_args(pod).get(flag) for flag in expected} == expected


def test_log_levels_become_proxy_args(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    config = spc("logs", {"proxy": {"logLevel": "debug", "componentLogLevel": "misc:error,upstream:debug"}})
    proxy = inj.proxy_container(render_and_inject(tmp_path, istio_injector, [config, make_deployment()]))
    assert inj.flag_value(proxy, "--proxyLogLevel") == "debug"
    assert inj.flag_value(proxy, "--proxyComponentLogLevel") == "misc:error,upstream:debug"


def test_lifecycle_hooks_land_on_istio_proxy(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    # exec hooks may only come from the mesh root namespace (docs/security.md)
    config = spc("hooks", {"lifecycle": {
        "postStart": {"exec": {"command": ["/bin/sh", "-c", "echo started"]}},
        "preStop": {"exec": {"command": ["/bin/sleep", "10"]}}}}, namespace="istio-system")
    hooks = inj.lifecycle(inj.proxy_container(render_and_inject(
        tmp_path, istio_injector, [config, make_deployment()])))
    assert hooks["postStart"] == {"exec": {"command": ["/bin/sh", "-c", "echo started"]}}
    assert hooks["preStop"] == {"exec": {"command": ["/bin/sleep", "10"]}}


def test_the_drain_agent_is_delivered_and_wired_as_pre_stop(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    config = spc("drain", {"lifecycle": {"terminationDrainDuration": "15s",
                                         "drainAgent": {"enabled": True, "minDrainDuration": "2s"}}})
    deployment = make_deployment(spec={"terminationGracePeriodSeconds": 60})
    pod = render_and_inject(tmp_path, istio_injector, [config, deployment],
                            "--agent-image", "registry.example/meshcfg-drain:1")
    proxy = inj.proxy_container(pod)
    assert inj.lifecycle(proxy)["preStop"] == {"exec": {"command": [
        "/meshcfg/meshcfg-drain", "prestop", "--grace-period=60s",
        "--termination-drain-duration=15s", "--min-drain=2s", "--native-sidecar=auto"]}}
    env = inj.env(proxy)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert {"name": "meshcfg-drain", "mountPath": "/meshcfg"} in proxy["volumeMounts"]
    installer = inj.container(pod, "meshcfg-drain-install")
    assert installer["image"] == "registry.example/meshcfg-drain:1"
    assert installer["command"] == ["/meshcfg-drain", "install", "/meshcfg/meshcfg-drain"]
    assert {"name": "meshcfg-drain", "emptyDir": {}} in inj.pod_spec(pod)["volumes"]
    assert inj.proxy_config(pod)["terminationDrainDuration"] == "15s"
    # the stats the agent reads reach the injected PROXY_CONFIG (pilot-agent's bootstrap)
    assert inj.proxy_config(pod)["proxyStatsMatcher"] == {
        "inclusionSuffixes": ["downstream_rq_active", "downstream_cx_active"]}


def agent_settings(pod: dict[str, Any]) -> dict[str, Any]:
    """What the agent in the injected pod's istio-proxy parses from its hook's argv and
    its environment, the downward API resolved as kubelet resolves it from this pod."""
    proxy = inj.proxy_container(pod)
    annotations = inj.pod_annotations(pod)
    environ = {}
    for name, value in inj.env(proxy).items():
        path = (value.get("fieldRef") or {}).get("fieldPath") if isinstance(value, dict) else None
        if path and path.startswith("metadata.annotations['"):
            value = annotations.get(path[len("metadata.annotations['"):-2], "")
        if isinstance(value, str):
            environ[name] = value
    argv = inj.lifecycle(proxy)["preStop"]["exec"]["command"]
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith(agent_cli.ENV_PREFIX)]:
            mp.delenv(name)
        for name, value in environ.items():
            mp.setenv(name, value)
        parser, flags = agent_cli.build_parser()
        values = flags["prestop"].convert(parser.parse_args(argv[1:]))
    return values


@pytest.mark.parametrize(("injector_native", "annotation", "native"), [
    (False, None, False),       # istiod with ENABLE_NATIVE_SIDECARS off (or auto, old nodes)
    (True, None, True),         # ENABLE_NATIVE_SIDECARS on (auto with kubelets >= 1.33)
    (False, "true", True),      # the pod's annotation wins over istiod's mode
    (True, "false", False),
])
def test_the_agent_knows_a_native_sidecar_as_the_injector_made_it(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any,
        injector_native: bool, annotation: str | None, native: bool) -> None:
    """Istio's own hook for a native sidecar is `pilot-agent request POST drain`, and the
    agent replaces it: it must know the mode to do the same. Render cannot know istiod's
    mode (auto decides from the nodes at admission), so without the pod annotation the
    hook says auto and the agent reads the injector's sidecar.istio.io/status."""
    config = spc("drain", {"lifecycle": {"drainAgent": {"enabled": True}}})
    deployment = make_deployment({} if annotation is None
                                 else {"sidecar.istio.io/nativeSidecar": annotation})
    injector = istio_injector.with_native_sidecars(injector_native)
    pod = render_and_inject(tmp_path, injector, [config, deployment])
    assert (inj.PROXY in inj.container_names(pod, "initContainers")) is native
    assert inj.PROXY not in inj.container_names(pod, "initContainers" if not native
                                                else "containers")
    argv = inj.lifecycle(inj.proxy_container(pod))["preStop"]["exec"]["command"]
    assert argv[0] == "/meshcfg/meshcfg-drain"   # the agent's hook replaced Istio's own
    assert ("--native-sidecar=true" in argv) is (annotation == "true")
    settings = agent_settings(pod)
    decided = settings["native_sidecar"]
    if decided is None:
        decided = agent_cli.native_from_status(settings["istio_status"])
    assert decided is native
    assert agent_cli.field_path(decided) == (
        "spec.initContainers{istio-proxy}" if native else "spec.containers{istio-proxy}")


@pytest.mark.parametrize("precedence", ["annotation-first", "workload-first"])
def test_a_users_own_annotations_reach_the_injector_untouched(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any,
        precedence: str) -> None:
    """render never overwrites a user's key (SPEC section 2); under workload-first the
    workload object's values cannot reach Istio, and render says so for each."""
    config = spc("wl", {"selector": WORKLOAD, "proxy": {"logLevel": "error", "concurrency": 3}})
    user = make_deployment({"sidecar.istio.io/logLevel": "info",
                            "proxy.istio.io/config": "concurrency: 1\ntracing: {sampling: 10}\n"})
    (tmp_path / "in.yaml").write_text(yaml.safe_dump_all([config, user]))
    result = CliRunner().invoke(cli, ["render", "deployment/app", "-n", "ai", "--local", "-f",
                                      str(tmp_path / "in.yaml"), "--merge", "-o", "json",
                                      "--precedence", precedence])
    assert result.exit_code == 0, result.stderr
    pod = istio_injector.inject_one(json.loads(result.stdout))
    assert inj.flag_value(inj.proxy_container(pod), "--proxyLogLevel") == "info"
    assert inj.proxy_config(pod)["concurrency"] == 1
    assert inj.proxy_config(pod)["tracing"]["sampling"] == 10
    noted = {line.split(": ")[2].split(" ")[0] for line in result.stderr.splitlines()}
    assert noted == ({"proxy.logLevel", "proxy.concurrency"} if precedence == "workload-first"
                     else set())


def test_mesh_default_config_flows_through(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    mesh = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": yaml.safe_dump({"defaultConfig": {"concurrency": 4}})}}
    pod = render_and_inject(tmp_path, istio_injector.with_mesh({"defaultConfig": {"concurrency": 4}}),
                            [mesh, make_deployment()])
    assert inj.proxy_config(pod)["concurrency"] == 4


def test_rendering_the_rendered_object_changes_nothing(
        tmp_path: Path, make_deployment: Any) -> None:
    config = spc("sizes", {"proxy": {"logLevel": "debug", "concurrency": 2}})
    (tmp_path / "in.yaml").write_text(yaml.safe_dump_all([config, make_deployment()]))
    args = ["render", "deployment/app", "-n", "ai", "--local", "-o", "json"]
    first = CliRunner().invoke(cli, [*args, "-f", str(tmp_path / "in.yaml"), "--merge"])
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "in.yaml").write_text(
        yaml.safe_dump_all([config, json.loads(first.stdout)]))
    second = CliRunner().invoke(cli, [*args, "-f", str(tmp_path / "again" / "in.yaml")])
    once = CliRunner().invoke(cli, [*args, "-f", str(tmp_path / "in.yaml")])
    assert json.loads(second.stdout) == json.loads(once.stdout)


def injected_pod(deployment: dict[str, Any]) -> dict[str, Any]:
    """The pod a ReplicaSet would create from an injected Deployment's template."""
    template = deployment["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {**template["metadata"], "name": "app-abc", "namespace": "ai"},
            "spec": template["spec"]}


def explain_pod(tmp_path: Path, docs: list[dict[str, Any]]) -> dict[str, Any]:
    (tmp_path / "live.yaml").write_text(yaml.safe_dump_all(docs))
    result = CliRunner().invoke(cli, ["explain", "pod/app-abc", "-n", "ai", "--local", "-f",
                                      str(tmp_path / "live.yaml"), "-o", "json"])
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_explain_says_when_a_running_sidecar_is_stale_and_what_a_restart_changes(
        tmp_path: Path, istio_injector: inj.Injector, make_deployment: Any) -> None:
    config = spc("sizes", {
        "proxy": {"concurrency": 2, "logLevel": "info",
                  "resources": {"requests": {"cpu": "300m"}, "limits": {"cpu": "2"}}},
        "traffic": {"excludeInboundPorts": "8080"},
        "lifecycle": {"terminationDrainDuration": "10s"}})
    pod = injected_pod(render_and_inject(tmp_path, istio_injector, [config, make_deployment()]))
    fresh = explain_pod(tmp_path, [config, pod])
    assert [w["code"] for w in fresh["warnings"]] == []
    changed = spc("sizes", {
        "proxy": {"concurrency": 4, "logLevel": "info",
                  "resources": {"requests": {"cpu": "300m"}, "limits": {"cpu": "4"}}},
        "traffic": {"excludeInboundPorts": "8080,9090"},
        "lifecycle": {"terminationDrainDuration": "10s"}})
    stale = explain_pod(tmp_path, [changed, pod])
    warning = next(w for w in stale["warnings"] if w["code"] == "StaleSidecar")
    assert "proxy.concurrency 2 -> 4" in warning["message"]
    assert "proxy.resources.limits.cpu 2 -> 4" in warning["message"]
    assert "traffic.excludeInboundPorts 8080 -> 8080,9090" in warning["message"]
    assert "terminationDrainDuration" not in warning["message"]
    assert "logLevel" not in warning["message"]
