"""`--local` validates as apply and the API server do: duplicates, unknown kinds of
meshcfg's group and wrongly typed metadata are errors naming file, document and object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubectl_meshcfg.cli import cli

SPC = """apiVersion: meshcfg.io/v1alpha1
kind: {kind}
metadata: {{name: {name}, namespace: ai{extra}}}
spec: {{proxy: {{concurrency: {value}}}}}
"""


def write(tmp_path: Path, *docs: str) -> Path:
    path = tmp_path / "in.yaml"
    path.write_text("---\n".join(docs))
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def spc(name: str = "a", value: int = 2, kind: str = "SidecarProxyConfig", extra: str = "") -> str:
    return SPC.format(name=name, value=value, kind=kind, extra=extra)


@pytest.mark.parametrize("command", ["explain", "lint", "get", "render"])
def test_two_objects_with_one_name_are_an_error_not_competitors(tmp_path: Path,
                                                                 command: str) -> None:
    path = write(tmp_path, spc(value=2), spc(value=3))
    code, out, err = run(command, "-A", "--local", "-f", str(path))
    assert code == 1
    assert out == ""
    assert err == (f"error: {path}: document 2: SidecarProxyConfig ai/a: ai/a is also in "
                   f"{path}: document 1; keep one\n")


def test_an_unknown_kind_of_our_group_is_an_error_for_local_and_apply(tmp_path: Path) -> None:
    path = write(tmp_path, spc(kind="SidecarProxyConf"))
    for args in (["explain", "-A", "--local", "-f", str(path)],
                 ["apply", "--dry-run=client", "-f", str(path)]):
        code, out, err = run(*args)
        assert code == 1, args
        assert "document 1: SidecarProxyConf ai/a: kind: 'SidecarProxyConf' is not " \
               "SidecarProxyConfig" in err, err


@pytest.mark.parametrize("extra", [", labels: {team: 1}", ", annotations: [a]",
                                   ", labels: {on: yes}"])
def test_metadata_labels_and_annotations_must_be_maps_of_strings(tmp_path: Path,
                                                                extra: str) -> None:
    path = write(tmp_path, spc(extra=extra))
    code, _, err = run("explain", "-A", "--local", "-f", str(path))
    assert code == 1
    assert err.count("\n") == 1
    assert "document 1: SidecarProxyConfig ai/a: metadata." in err
    assert "must be a map of strings" in err


@pytest.mark.parametrize("spec,field", [
    ("{proxy: {concurrency: 2}, traffic: }", "spec.traffic"),
    ("{proxy: {concurrency: null}}", "spec.proxy.concurrency"),
    ("{selector: {matchLabels: {app: null}}}", "spec.selector.matchLabels.app"),
    ("", "spec"),
])
def test_a_null_in_spec_is_one_error_naming_the_field(tmp_path: Path, spec: str,
                                                      field: str) -> None:
    """Server-side apply (meshcfg's apply) rejects explicit nulls: so do --local and apply's
    own check, with one line per null (not a second one for what the null leaves empty)."""
    path = write(tmp_path, "apiVersion: meshcfg.io/v1alpha1\nkind: SidecarProxyConfig\n"
                           f"metadata: {{name: a, namespace: ai}}\nspec: {spec}\n")
    for args in (["explain", "-A", "--local", "-f", str(path)],
                 ["apply", "--dry-run=client", "-f", str(path)]):
        code, out, err = run(*args)
        assert (code, out) == (1, ""), args
        assert err == (f"error: {path}: document 1: SidecarProxyConfig ai/a: {field}: is null: "
                       "remove the field or give it a value (server-side apply rejects "
                       "nulls)\n"), err


@pytest.mark.parametrize("extra,field", [
    (", labels: {'bad key': v}", "metadata.labels"),
    (", labels: {app: 'a b'}", "metadata.labels"),
    (", annotations: {'-a': v}", "metadata.annotations"),
    (", finalizers: [null]", "metadata.finalizers"),
    (", ownerReferences: [{kind: A}]", "metadata.ownerReferences.apiVersion"),
    (", creationTimestamp: yesterday", "metadata.creationTimestamp"),
])
def test_object_meta_is_checked_as_the_server_checks_it(tmp_path: Path, extra: str,
                                                        field: str) -> None:
    path = write(tmp_path, spc(extra=extra))
    code, _, err = run("explain", "-A", "--local", "-f", str(path))
    assert code == 1
    assert err.startswith(f"error: {path}: document 1: SidecarProxyConfig ai/a: {field}: ")


def test_null_label_values_and_a_null_namespace_are_what_the_server_makes_of_them(
        tmp_path: Path) -> None:
    """The server stores a null label or annotation value as "" and a null namespace as
    the request's."""
    path = write(tmp_path, SPC.format(kind="SidecarProxyConfig", name="a", value=2,
                                      extra=", labels: {team: null}, annotations: {n: null}")
                 .replace("namespace: ai", "namespace: null"))
    code, out, err = run("get", "-n", "dev", "--local", "-f", str(path), "-o", "name")
    assert (code, err) == (0, "")
    assert out == "sidecarproxyconfig.meshcfg.io/a\n"


GLOBAL_WF = """apiVersion: meshcfg.io/v1alpha1
kind: SidecarProxyConfig
metadata: {name: g, namespace: istio-system}
spec: {precedence: %s, lifecycle: {terminationDrainDuration: 20s}}
---
apiVersion: meshcfg.io/v1alpha1
kind: SidecarProxyConfig
metadata: {name: wl, namespace: ai}
spec: {selector: {matchLabels: {app: a}}, proxy: {logLevel: error}}
---
apiVersion: v1
kind: Pod
metadata:
  name: a-0
  namespace: ai
  labels: {app: a}
  annotations: {sidecar.istio.io/logLevel: debug, proxy.istio.io/config: "concurrency: 2"}
spec: {containers: [{name: app, image: x}]}
"""


@pytest.mark.parametrize("precedence", ["workload-first", "annotation-first"])
def test_explain_and_lint_say_when_a_users_annotation_blocks_a_value(
        tmp_path: Path, precedence: str) -> None:
    """The pod's own logLevel annotation loses to the workload object under workload-first,
    and its own proxy.istio.io/config leaves no room for the global terminationDrainDuration:
    neither value can reach the sidecar, as render never changes a user's annotation."""
    path = write(tmp_path, GLOBAL_WF % precedence)
    code, out, err = run("lint", "pod/a-0", "-n", "ai", "--local", "-f", str(path), "-o", "json")
    assert code == 3, err
    [item] = json.loads(out)["items"]
    blocked = sorted(w["message"].split(":")[0] for w in item["warnings"]
                     if w["code"] == "UserAnnotationBlocks")
    expected = ["lifecycle.terminationDrainDuration"]
    if precedence == "workload-first":
        expected.insert(0, "proxy.logLevel")   # else the pod's own debug wins and is delivered
    assert blocked == sorted(expected)
    code, out, _ = run("explain", "pod/a-0", "-n", "ai", "--local", "-f", str(path))
    assert code == 0
    assert "UserAnnotationBlocks" in out
    assert "fix: move the object's own annotation into a SidecarProxyConfig" in out
