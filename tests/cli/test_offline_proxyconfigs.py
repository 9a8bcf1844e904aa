"""Istio's ProxyConfig objects among `--local -f` inputs: explain, lint, render, and the
one-line errors of an invalid one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from kubectl_meshcfg.cli import cli

INPUTS = """
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: mesh-wide, namespace: istio-system}
spec:
  environmentVariables: {ISTIO_META_DNS_CAPTURE: "true", TRACE: mesh}
---
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: web-threads, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  concurrency: 4
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {proxy.istio.io/config: "concurrency: 2"}
    spec:
      containers: [{name: app, image: app}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: app, image: app}]
"""


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_explain_lint_and_render_with_istio_proxyconfigs(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(INPUTS)
    result = run("explain", "deploy/web", "deploy/api", "-n", "shop", "--local", "-f",
                 str(tmp_path), "-o", "json")
    assert result.exit_code == 0, result.output
    items = {i["target"]["name"]: i for i in json.loads(result.stdout)["items"]}
    web, api = items["web"]["fields"], items["api"]["fields"]
    assert web["proxy.concurrency"]["value"] == 2       # what Envoy runs, not PROXY_CONFIG's 4
    assert web["proxy.concurrency"]["overridden"][0] == {
        "value": 4, "source": {"layer": "istio-workload", "kind": "ProxyConfig",
                               "namespace": "shop", "name": "web-threads"}}
    assert api["proxy.concurrency"]["value"] == 2       # ceil of the 2000m default limit
    assert api["proxy.dnsCapture"] == {"value": True, "source": {
        "layer": "istio-global", "kind": "ProxyConfig", "namespace": "istio-system",
        "name": "mesh-wide"}, "overridden": [{"value": False, "source": {"layer": "default"}}]}
    assert api["proxy.proxyMetadata.TRACE"]["value"] == "mesh"

    text = run("explain", "deploy/web", "-n", "shop", "--local", "-f", str(tmp_path))
    assert "istio-workload ProxyConfig shop/web-threads" in text.stdout
    assert text.stdout.splitlines()[2].startswith("Istio ProxyConfigs: istio-global < ")
    lint = run("lint", "-n", "shop", "--local", "-f", str(tmp_path))
    assert lint.exit_code == 3
    warned = [line for line in lint.stdout.splitlines() if "ProxyConfigOverriddenAtRuntime" in line]
    assert len(warned) == 1 and warned[0].startswith("deployment/web (shop): ")
    assert "PROXY_CONFIG says 4 (ProxyConfig shop/web-threads" in warned[0]
    assert "Envoy runs 2 (annotation proxy.istio.io/config)" in warned[0]

    rendered = run("render", "deploy/api", "-n", "shop", "--local", "-f", str(tmp_path))
    assert rendered.exit_code == 0, rendered.output
    body = yaml.safe_load(rendered.stdout)
    config = yaml.safe_load(body["spec"]["template"]["metadata"]["annotations"]
                            ["proxy.istio.io/config"])
    # istiod delivers what the ProxyConfigs set: render does not pin a copy of it
    assert "ISTIO_META_DNS_CAPTURE" not in config["proxyMetadata"]
    assert "TRACE" not in config["proxyMetadata"]


def test_an_invalid_proxyconfig_is_one_line_naming_file_document_object_and_field(
        tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(INPUTS.replace("concurrency: 4", "concurrency: -4"))
    result = run("explain", "-n", "shop", "--local", "-f", str(tmp_path / "in.yaml"))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'in.yaml'}: document 2: ProxyConfig shop/web-threads: "
        "spec.concurrency: -4 is not an integer >= 0"]
