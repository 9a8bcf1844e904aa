"""The offline commands through click's runner: stdout, stderr and exit code apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from kubectl_meshcfg.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CONFIG = """
apiVersion: meshcfg.io/v1alpha1
kind: SidecarProxyConfig
metadata: {name: perf-sensitive, namespace: ai}
spec:
  selector: {matchLabels: {performance: sensitive}}
  proxy:
    concurrency: 5
    resources: {limits: {cpu: "5"}}
"""
POD = """
apiVersion: v1
kind: Pod
metadata:
  name: svc-a-0
  namespace: ai
  labels: {performance: sensitive}
  annotations: {sidecar.istio.io/proxyCPU: "1"}
spec:
  containers: [{name: app, image: app}]
"""


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "pod.yaml").write_text(POD)
    return tmp_path


def d(value: Any, layer: str = "default") -> dict[str, Any]:
    return {"value": value, "source": {"layer": layer}}


def workload(value: Any) -> dict[str, Any]:
    return {"value": value, "source": {"layer": "workload", "kind": "SidecarProxyConfig",
                                       "namespace": "ai", "name": "perf-sensitive"}}


def test_explain_json_is_exactly_the_spec_object(manifests: Path) -> None:
    result = run("explain", "pod/svc-a-0", "-n", "ai", "--local", "-f", str(manifests), "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    cpu_annotation = {"layer": "annotation", "annotation": "sidecar.istio.io/proxyCPU"}
    only = lambda entry: {**entry, "overridden": []}  # noqa: E731
    expected = {
        "apiVersion": "meshcfg.io/v1alpha1", "kind": "EffectiveSidecarConfig",
        "target": {"kind": "Pod", "namespace": "ai", "name": "svc-a-0"},
        "precedence": "annotation-first",
        "fields": {
            "proxy.resources.requests.cpu": {"value": "1", "source": cpu_annotation,
                                             "overridden": [d("100m")]},
            "proxy.resources.requests.memory": only(d("128Mi")),
            "proxy.resources.limits.cpu": {**workload("5"), "overridden": [d("2000m")]},
            "proxy.resources.limits.memory": only(d("1024Mi")),
            "proxy.concurrency": {**workload(5), "overridden": [d(5)]},   # ceil(limit 5)
            "proxy.logLevel": only(d("warning")),
            "proxy.componentLogLevel": only(d("misc:error")),
            "proxy.dnsCapture": only(d(False)),
            "init.resources.requests.cpu": {"value": "1", "source": cpu_annotation,
                                            "overridden": [d("100m")]},
            "init.resources.requests.memory": only(d("128Mi")),
            "init.resources.limits.cpu": only(d("2000m")),
            "init.resources.limits.memory": only(d("1024Mi")),
            "traffic.includeInboundPorts": only(d("*")),
            "traffic.excludeInboundPorts": only(d("")),
            "traffic.includeOutboundPorts": only(d("")),
            "traffic.excludeOutboundPorts": only(d("")),
            "traffic.includeOutboundIPRanges": only(d("*")),
            "traffic.excludeOutboundIPRanges": only(d("")),
            "lifecycle.holdApplicationUntilProxyStarts": only(d(False)),
            "lifecycle.terminationDrainDuration": only(d("5s")),
        },
        "warnings": [{"code": "PartialResourceAnnotations",
                      "message": "only sidecar.istio.io/proxyCPU of the four sidecar resource "
                                 "annotations set: Istio then drops every other sidecar "
                                 "resource value"}],
    }
    assert json.loads(result.stdout) == expected


def test_explain_yaml_carries_the_same_object(manifests: Path) -> None:
    as_json = run("explain", "pod/svc-a-0", "-n", "ai", "--local", "-f", str(manifests), "-o", "json")
    as_yaml = run("explain", "pod", "svc-a-0", "-n", "ai", "--local", "-f", str(manifests), "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)


def test_several_targets_give_a_list_and_owned_pods_fold_into_their_workload() -> None:
    result = run("explain", "--local", "-f", str(EXAMPLES), "-A", "-o", "json")
    assert result.exit_code == 0
    listing = json.loads(result.stdout)
    assert set(listing) == {"kind", "items"} and listing["kind"] == "List"
    targets = {(i["target"]["kind"], i["target"]["namespace"], i["target"]["name"])
               for i in listing["items"]}
    assert targets == {("Deployment", "dev", "web"), ("Pod", "dev", "debug-shell"),
                       ("Deployment", "prod", "checkout"), ("Deployment", "ai", "svc-a"),
                       ("StatefulSet", "ai", "embedder"), ("Deployment", "ai", "dashboard"),
                       ("Deployment", "payments", "ledger"), ("CronJob", "payments", "batch-export")}


def test_pods_owned_by_a_listed_workload_are_folded(tmp_path: Path) -> None:
    owned = yaml.safe_load(POD)
    owned["metadata"]["name"] = "svc-a-abc"
    owned["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                             "name": "svc-a-123", "controller": True, "uid": "u"}]
    replicaset = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "metadata": {"name": "svc-a-123", "namespace": "ai",
                               "ownerReferences": [{"kind": "Deployment", "name": "svc-a",
                                                    "controller": True}]},
                  "spec": {"template": {"metadata": {"labels": {"app": "svc-a"}}}}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "svc-a", "namespace": "ai"},
                  "spec": {"template": {"metadata": {"labels": {"app": "svc-a"}}}}}
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all([owned, replicaset, deployment]))
    result = run("explain", "--local", "-f", str(tmp_path), "-n", "ai", "-o", "json")
    names = [i["target"]["name"] for i in json.loads(result.stdout)["items"]]
    assert names == ["svc-a"]
    # asking for the pod by name still explains it
    one = run("explain", "pod/svc-a-abc", "--local", "-f", str(tmp_path), "-n", "ai", "-o", "json")
    assert json.loads(one.stdout)["target"]["name"] == "svc-a-abc"


def test_explain_text_shows_value_source_and_what_was_shadowed(manifests: Path) -> None:
    result = run("explain", "pod/svc-a-0", "-n", "ai", "--local", "-f", str(manifests))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Pod: svc-a-0.ai"
    row = next(line for line in lines if line.startswith("proxy.concurrency "))
    assert row.split() == ["proxy.concurrency", "5", "workload", "ai/perf-sensitive", "5", "(default)"]
    assert "! PartialResourceAnnotations:" in result.stdout
    assert "fix: set all four" in result.stdout


def test_label_selector_and_type_filter() -> None:
    result = run("explain", "deployments", "--local", "-f", str(EXAMPLES), "-A",
                 "-l", "performance=sensitive", "-o", "json")
    names = [i["target"]["name"] for i in json.loads(result.stdout)["items"]]
    assert names == ["svc-a"]
    result = run("explain", "--local", "-f", str(EXAMPLES), "-A", "-l", "performance", "-o", "json")
    assert sorted(i["target"]["name"] for i in json.loads(result.stdout)["items"]) == ["embedder", "svc-a"]
    result = run("explain", "sts", "--local", "-f", str(EXAMPLES), "-A", "-l", "app notin (embedder)",
                 "-o", "json")
    assert json.loads(result.stdout)["items"] == []


def test_stdin_is_read_with_dash(manifests: Path) -> None:
    text = (manifests / "config.yaml").read_text() + "---\n" + (manifests / "pod.yaml").read_text()
    result = run("explain", "pod/svc-a-0", "-n", "ai", "--local", "-f", "-", "-o", "json", stdin=text)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["fields"]["proxy.concurrency"]["value"] == 5


def test_directories_recurse_only_with_r(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "pod.yaml").write_text(POD)
    (tmp_path / "config.yaml").write_text(CONFIG)
    flat = run("explain", "--local", "-f", str(tmp_path), "-n", "ai", "-o", "json")
    assert json.loads(flat.stdout)["items"] == []
    deep = run("explain", "--local", "-f", str(tmp_path), "-R", "-n", "ai", "-o", "json")
    assert json.loads(deep.stdout)["items"][0]["target"]["name"] == "svc-a-0"


def test_lint_exits_3_with_warnings_and_0_without(manifests: Path) -> None:
    dirty = run("lint", "--local", "-f", str(manifests), "-n", "ai")
    assert dirty.exit_code == 3
    assert "pod/svc-a-0 (ai): PartialResourceAnnotations:" in dirty.stdout
    assert dirty.stdout.rstrip().endswith("1 warning in 1 target")
    (manifests / "pod.yaml").write_text(POD.replace('annotations: {sidecar.istio.io/proxyCPU: "1"}', ""))
    clean = run("lint", "--local", "-f", str(manifests), "-n", "ai")
    assert clean.exit_code == 0, clean.stdout
    assert clean.stdout.strip() == "0 warnings in 1 target"


def test_lint_json_lists_warnings_per_target() -> None:
    result = run("lint", "--local", "-f", str(EXAMPLES), "-A", "-o", "json")
    assert result.exit_code == 3
    by_target = {i["target"]["name"]: [w["code"] for w in i["warnings"]]
                 for i in json.loads(result.stdout)["items"]}
    assert by_target["svc-a"] == ["WorkloadConflict"]
    assert by_target["batch-export"] == ["DrainExceedsGracePeriod", "DrainAgentWithoutBudget"]
    assert by_target["debug-shell"] == ["PartialResourceAnnotations"]
    assert by_target["checkout"] == []


def test_get_lists_configs_with_scope_selector_pods_and_conflicts() -> None:
    result = run("get", "--local", "-f", str(EXAMPLES), "-A")
    assert result.exit_code == 0
    rows = {line.split()[1]: line.split() for line in result.stdout.splitlines()[1:]}
    assert result.stdout.splitlines()[0].split() == [
        "NAMESPACE", "NAME", "SCOPE", "SELECTOR", "FIELDS", "PODS", "CONFLICTS", "AGE"]
    assert rows["mesh-defaults"][2] == "global"
    assert rows["small-proxies"][2] == "namespace"
    assert rows["perf-sensitive"][2:4] == ["workload", "performance=sensitive"]
    assert rows["perf-sensitive"][6] == "ai/perf-tiered"
    assert rows["big-proxies"][6] == "<none>"


def test_get_name_and_json_outputs() -> None:
    names = run("get", "--local", "-f", str(EXAMPLES), "-n", "ai", "-o", "name")
    assert names.stdout.split() == ["sidecarproxyconfig.meshcfg.io/perf-sensitive",
                                    "sidecarproxyconfig.meshcfg.io/perf-tiered"]
    one = run("get", "perf-tiered", "--local", "-f", str(EXAMPLES), "-n", "ai", "-o", "json")
    assert json.loads(one.stdout)["metadata"]["name"] == "perf-tiered"
    missing = run("get", "nope", "--local", "-f", str(EXAMPLES), "-n", "ai")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == 'error: sidecarproxyconfigs.meshcfg.io "nope" not found'


@pytest.mark.parametrize("args,code,message", [
    (["explain", "--local", "-f", "/no/such/path"], 1, "error: the path '/no/such/path' does not exist"),
    (["explain", "widget/x", "--local", "-f", str(EXAMPLES)], 2, "unknown target type 'widget'"),
    (["explain", "pod/ghost", "--local", "-f", str(EXAMPLES), "-n", "ai"], 1,
     "error: pod/ghost not found in namespace ai"),
    (["explain", "--local"], 2, "--local needs -f"),
    (["explain", "--local", "-f", str(EXAMPLES), "-o", "xml"], 2, "Invalid value for '-o'"),
    (["explain", "--local", "-f", str(EXAMPLES), "-l", "a=(b"], 2, "invalid label selector"),
])
def test_errors_are_one_line_with_the_spec_exit_code(args: list[str], code: int, message: str) -> None:
    result = run(*args)
    assert result.exit_code == code
    assert result.stdout == ""
    assert message in result.stderr
    if code == 1:
        assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_annotations_are_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(POD.replace('sidecar.istio.io/proxyCPU: "1"',
                                                   "sidecar.istio.io/logLevel: loud"))
    result = run("explain", "pod/svc-a-0", "-n", "ai", "--local", "-f", str(tmp_path), "-o", "json")
    assert result.exit_code == 0
    assert [w["code"] for w in json.loads(result.stdout)["warnings"]] == ["InvalidAnnotation"]
