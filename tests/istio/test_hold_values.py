"""holdApplicationUntilProxyStarts from the injector's values: the pinned template ORs
`global.proxy.holdApplicationUntilProxyStarts` with the ProxyConfig field, so a values `true`
beats a `false` anywhere in ProxyConfig, and native sidecars ignore both. For an install with
that values key (`istioctl manifest generate --set values.global...=true`), explain must
report what the real `istioctl kube-inject` does, with the source that forced it and the
HoldForcedByInjectorValues warning; lint on the injected pod finds nothing stale."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_meshcfg.cli import cli
from kubectl_meshcfg.core import staleness

from . import injector as inj
from .test_installed_defaults import configmaps

pytestmark = pytest.mark.istio

LEAF = "lifecycle.holdApplicationUntilProxyStarts"
CM = {"layer": "default", "kind": "ConfigMap", "namespace": "istio-system",
      "name": "istio-sidecar-injector"}
OFF = {"proxy.istio.io/config": "holdApplicationUntilProxyStarts: false\n"}
WAIT = {"postStart": {"exec": {"command": ["pilot-agent", "wait"]}}}


@pytest.fixture(scope="module")
def holding(tmp_path_factory: pytest.TempPathFactory) -> tuple[inj.Injector, Path]:
    workdir = tmp_path_factory.mktemp("hold-values")
    injector = inj.Injector.create(workdir=workdir, generate_flags=(
        "--set", "profile=default",
        "--set", "values.global.proxy.holdApplicationUntilProxyStarts=true"))
    cms = workdir / "configmaps.yaml"
    cms.write_text(yaml.safe_dump_all(configmaps(workdir / "manifest.yaml")))
    values = json.loads(injector.inputs.values.read_text())
    assert values["global"]["proxy"]["holdApplicationUntilProxyStarts"] is True
    return injector, cms


def explain(tmp_path: Path, *docs: dict[str, Any], files: tuple[Path, ...] = (),
            command: str = "explain") -> dict[str, Any]:
    path = tmp_path / f"{command}-in.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    args = [command, "pod/app-0", "-n", "ai", "--local", "-o", "json", "-f", str(path)]
    for extra in files:
        args += ["-f", str(extra)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 3), result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out["items"][0] if out.get("kind") == "List" else out


def codes(explained: dict[str, Any]) -> list[str]:
    return [w["code"] for w in explained["warnings"]]


def test_values_true_beats_an_annotation_false(holding: tuple[inj.Injector, Path],
                                               tmp_path: Path, make_pod: Any) -> None:
    injector, cms = holding
    pod = make_pod(OFF)
    got = explain(tmp_path, pod, files=(cms,))
    field = got["fields"][LEAF]
    assert field["value"] is True
    assert field["source"] == CM
    assert field["overridden"][0] == {
        "value": False, "source": {"layer": "annotation", "annotation": "proxy.istio.io/config"}}
    [warning] = [w for w in got["warnings"] if w["code"] == "HoldForcedByInjectorValues"]
    assert "annotation proxy.istio.io/config says false" in warning["message"]
    assert warning["objects"] == ["ConfigMap istio-system/istio-sidecar-injector"]

    injected = injector.inject_one(pod)       # what the real injector does with it
    assert inj.container_names(injected) == ["istio-proxy", "app"]
    assert inj.lifecycle(inj.proxy_container(injected)) == WAIT
    assert inj.proxy_config(injected).get("holdApplicationUntilProxyStarts") in (None, False)
    running = staleness.running_values(inj.pod_spec(injected), inj.pod_annotations(injected))
    assert running is not None and running[LEAF] is True
    linted = explain(tmp_path, injected, files=(cms,), command="lint")
    assert "StaleSidecar" not in codes(linted)
    assert explain(tmp_path, injected, files=(cms,))["fields"][LEAF]["value"] is True


def test_a_sidecar_proxy_config_false_is_overridden_too(
        holding: tuple[inj.Injector, Path], tmp_path: Path, make_pod: Any) -> None:
    _, cms = holding
    spc = {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
           "metadata": {"name": "no-hold", "namespace": "ai"},
           "spec": {"lifecycle": {"holdApplicationUntilProxyStarts": False}}}
    got = explain(tmp_path, spc, make_pod(), files=(cms,))
    assert got["fields"][LEAF]["value"] is True
    assert got["fields"][LEAF]["overridden"][0]["source"]["name"] == "no-hold"
    assert "HoldForcedByInjectorValues" in codes(got)


def test_native_sidecars_ignore_it(holding: tuple[inj.Injector, Path], tmp_path: Path,
                                   make_pod: Any) -> None:
    injector, cms = holding
    pod = make_pod({**OFF, "sidecar.istio.io/nativeSidecar": "true"})
    got = explain(tmp_path, pod, files=(cms,))
    assert got["fields"][LEAF]["value"] is False
    assert "HoldForcedByInjectorValues" not in codes(got)
    injected = injector.with_native_sidecars().inject_one(pod)
    assert inj.container_names(injected, "initContainers")[-1] == "istio-proxy"
    assert "postStart" not in inj.lifecycle(inj.proxy_container(injected))
    assert "StaleSidecar" not in codes(explain(tmp_path, injected, files=(cms,),
                                               command="lint"))


def test_without_the_values_key_the_annotation_false_stands(tmp_path: Path,
                                                            make_pod: Any) -> None:
    injector = inj.Injector.create()          # the stock default profile
    pod = make_pod(OFF)
    got = explain(tmp_path, *configmaps(inj.default_inputs_dir() / "manifest.yaml"), pod)
    assert got["fields"][LEAF]["value"] is False
    assert "HoldForcedByInjectorValues" not in codes(got)
    assert inj.container_names(injector.inject_one(pod)) == ["app", "istio-proxy"]
