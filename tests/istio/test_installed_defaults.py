"""explain's default layer is what the installed Istio injects: for the pinned charts'
default and demo profiles and an install that changes `global.proxy.*`, the injector
ConfigMaps (`istioctl manifest generate`, offline) are given to `--local`; a pod with no
annotations is explained, and injected by the real `istioctl kube-inject` with the same
ConfigMaps: every value read back from the injected pod equals explain's, and lint on the
injected pod finds no StaleSidecar."""

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

pytestmark = pytest.mark.istio

INSTALLS = {
    "default": ("--set", "profile=default"),
    "demo": ("--set", "profile=demo"),
    "custom": ("--set", "profile=default", "-f", "{overlay}"),
}
CUSTOM = {"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
          "spec": {"values": {"global": {"proxy": {
              "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "3000m"}},
              "logLevel": "error", "excludeInboundPorts": "9999",
              "excludeIPRanges": "10.96.0.0/12"}}}}}
INJECTOR_FIELDS = ("proxy.resources.requests.cpu", "proxy.resources.requests.memory",
                   "proxy.resources.limits.cpu", "proxy.resources.limits.memory",
                   "init.resources.requests.cpu", "init.resources.requests.memory",
                   "init.resources.limits.cpu", "init.resources.limits.memory",
                   "proxy.logLevel", "proxy.componentLogLevel", "traffic.includeInboundPorts",
                   "traffic.excludeInboundPorts", "traffic.includeOutboundIPRanges",
                   "traffic.excludeOutboundIPRanges")


def configmaps(manifest: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(manifest.read_text())
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap"
            and (doc["metadata"]["name"] == "istio"
                 or doc["metadata"]["name"].startswith(("istio-sidecar-injector", "istio-canary")))]


def meshcfg(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    return result


@pytest.fixture(scope="module", params=sorted(INSTALLS))
def install(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[str, inj.Injector, Path]:
    name = str(request.param)
    workdir = tmp_path_factory.mktemp(f"install-{name}")
    overlay = workdir / "overlay.yaml"
    overlay.write_text(yaml.safe_dump(CUSTOM))
    flags = tuple(flag.format(overlay=overlay) for flag in INSTALLS[name])
    injector = inj.Injector.create(workdir=workdir, generate_flags=flags)
    cms = workdir / "configmaps.yaml"
    cms.write_text(yaml.safe_dump_all(configmaps(workdir / "manifest.yaml")))
    return name, injector, cms


def test_explain_defaults_are_what_the_real_injector_injects(
        install: tuple[str, inj.Injector, Path], tmp_path: Path, make_pod: Any) -> None:
    name, injector, cms = install
    pod = make_pod()
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    explained = meshcfg("explain", "pod/app-0", "-n", "ai", "--local", "-f", str(cms),
                        "-f", str(tmp_path / "pod.yaml"), "-o", "json")
    assert explained.exit_code == 0, explained.stderr
    fields = json.loads(explained.stdout)["fields"]
    cm_source = {"layer": "default", "kind": "ConfigMap", "namespace": "istio-system",
                 "name": "istio-sidecar-injector"}
    for leaf in INJECTOR_FIELDS:
        assert fields[leaf]["source"] == cm_source, leaf
    assert fields["proxy.concurrency"]["source"] == {"layer": "default"}

    injected = injector.inject_one(pod)
    running = staleness.running_values(inj.pod_spec(injected))
    assert running is not None
    assert staleness.stale_fields(fields, running) == []
    for leaf in INJECTOR_FIELDS:
        assert leaf in running, leaf

    (tmp_path / "injected.yaml").write_text(yaml.safe_dump(injected))
    linted = meshcfg("lint", "pod/app-0", "-n", "ai", "--local", "-f", str(cms),
                     "-f", str(tmp_path / "injected.yaml"), "-o", "json")
    codes = [w["code"] for item in json.loads(linted.stdout)["items"] for w in item["warnings"]]
    assert "StaleSidecar" not in codes, linted.stdout


def test_the_installs_differ_where_expected(install: tuple[str, inj.Injector, Path],
                                            tmp_path: Path, make_pod: Any) -> None:
    """The fixture's installs are really different (else the test above proves little)."""
    name, injector, cms = install
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(make_pod()))
    fields = json.loads(meshcfg("explain", "pod/app-0", "-n", "ai", "--local", "-f", str(cms),
                                "-f", str(tmp_path / "pod.yaml"), "-o", "json").stdout)["fields"]
    cpu = fields["init.resources.requests.cpu"]["value"]
    assert cpu == {"default": "100m", "demo": "10m", "custom": "250m"}[name]
    assert fields["proxy.concurrency"]["value"] == (3 if name == "custom" else 2)


def test_without_the_configmaps_the_builtins_are_the_default_profile(
        tmp_path: Path, make_pod: Any) -> None:
    injector = inj.Injector.create()        # the default profile, cached
    pod = make_pod()
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    fields = json.loads(meshcfg("explain", "pod/app-0", "-n", "ai", "--local", "-f",
                                str(tmp_path / "pod.yaml"), "-o", "json").stdout)["fields"]
    assert all(f["source"] == {"layer": "default"} for f in fields.values())
    running = staleness.running_values(inj.pod_spec(injector.inject_one(pod)))
    assert running is not None
    assert staleness.stale_fields(fields, running) == []


def test_a_revision_resolves_against_its_own_configmaps(tmp_path: Path, make_pod: Any) -> None:
    """The default profile installed as the default revision and the demo profile as revision
    `canary`, both ConfigMap sets given to --local: a pod labelled istio.io/rev=canary gets the
    canary injector's values, and that is what the canary injector injects."""
    default = inj.Injector.create()
    canary = inj.Injector.create(workdir=tmp_path / "canary",
                                 generate_flags=("--set", "profile=demo", "--set",
                                                 "revision=canary"))
    both = configmaps(inj.default_inputs_dir() / "manifest.yaml") + configmaps(
        tmp_path / "canary" / "manifest.yaml")
    assert {d["metadata"]["name"] for d in both} >= {
        "istio", "istio-sidecar-injector", "istio-canary", "istio-sidecar-injector-canary"}
    pod = make_pod()
    pod["metadata"]["labels"]["istio.io/rev"] = "canary"
    (tmp_path / "in.yaml").write_text(yaml.safe_dump_all([*both, pod]))
    fields = json.loads(meshcfg("explain", "pod/app-0", "-n", "ai", "--local", "-f",
                                str(tmp_path / "in.yaml"), "-o", "json").stdout)["fields"]
    cpu = fields["init.resources.requests.cpu"]
    assert cpu["value"] == "10m"
    assert cpu["source"]["name"] == "istio-sidecar-injector-canary"
    running = staleness.running_values(inj.pod_spec(canary.inject_one(pod)))
    assert running is not None
    assert staleness.stale_fields(fields, running) == []
    # and the default revision's pod still gets the default profile
    plain = make_pod(name="app-1")
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump_all([*both, plain]))
    fields = json.loads(meshcfg("explain", "pod/app-1", "-n", "ai", "--local", "-f",
                                str(tmp_path / "plain.yaml"), "-o", "json").stdout)["fields"]
    assert fields["init.resources.requests.cpu"]["value"] == "100m"
    running = staleness.running_values(inj.pod_spec(default.inject_one(plain)))
    assert running is not None and staleness.stale_fields(fields, running) == []
