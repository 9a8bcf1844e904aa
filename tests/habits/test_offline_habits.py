"""kubectl habits that need no cluster (each was seen failing): resource names and targets
as kubectl takes them, table flags, managedFields, -v after the subcommand, an empty
--field-manager, -f from /dev/stdin, <(...) and /dev/null, a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = str(ROOT / "examples")
MESHCFG = str(Path(sys.executable).parent / "kubectl-meshcfg")


def run(*args: str, stdin: str | None = None, **kwargs: Any) -> tuple[int, str, str]:
    r = subprocess.run([MESHCFG, *args], input=stdin, capture_output=True, text=True,
                       timeout=120, **kwargs)
    return r.returncode, r.stdout, r.stderr


def local(*args: str) -> tuple[int, str, str]:
    return run(*args[:1], "--local", "-f", EXAMPLES, *args[1:])


@pytest.mark.parametrize("args", [
    ["spc"], ["sidecarproxyconfigs"], ["sidecarproxyconfig"], ["SPC"],
    ["sidecarproxyconfigs.meshcfg.io"], ["sidecarproxyconfigs.v1alpha1.meshcfg.io"],
])
def test_get_by_resource_type_lists_every_object(args: list[str]) -> None:
    assert local("get", "-n", "ai", *args, "-o", "name") == (
        0, "sidecarproxyconfig.meshcfg.io/perf-sensitive\nsidecarproxyconfig.meshcfg.io/perf-tiered\n", "")


@pytest.mark.parametrize("args", [
    ["spc", "perf-sensitive", "perf-tiered"], ["spc/perf-sensitive", "spc/perf-tiered"],
    ["perf-sensitive", "perf-tiered"], ["sidecarproxyconfig.meshcfg.io/perf-sensitive", "perf-tiered"],
])
def test_get_named_objects_in_the_order_asked(args: list[str]) -> None:
    assert local("get", "-n", "ai", *args, "-o", "name") == (
        0, "sidecarproxyconfig.meshcfg.io/perf-sensitive\nsidecarproxyconfig.meshcfg.io/perf-tiered\n", "")


def test_get_one_named_object_is_the_object_not_a_list() -> None:
    code, out, _ = local("get", "-n", "ai", "spc", "perf-tiered", "-o", "json")
    assert code == 0 and json.loads(out)["kind"] == "SidecarProxyConfig"
    code, out, _ = local("get", "-n", "ai", "spc", "-o", "json")
    assert code == 0 and json.loads(out)["kind"] == "List"


@pytest.mark.parametrize("args,message", [
    (["deploy/web"], "'deploy/web' is not spc/NAME"),
    (["spc", "spc/perf-tiered"], "no need to give the type"),
])
def test_get_rejects_other_types(args: list[str], message: str) -> None:
    code, out, err = local("get", "-n", "ai", *args)
    assert (code, out) == (2, "") and message in err


def test_get_missing_name() -> None:
    assert local("get", "-n", "ai", "spc", "perf-tiered", "nope") == (
        1, "", 'error: sidecarproxyconfigs.meshcfg.io "nope" not found\n')


def targets(out: str) -> list[str]:
    doc = json.loads(out)
    items = doc["items"] if doc["kind"] == "List" else [doc]
    return [f"{i['target']['kind']}/{i['target']['name']}" for i in items]


@pytest.mark.parametrize("args", [
    ["deploy/svc-a"], ["deployment/svc-a"], ["deployments/svc-a"], ["deployment.apps/svc-a"],
    ["deployments.v1.apps/svc-a"], ["Deployment.apps", "svc-a"], ["deploy", "svc-a"],
])
def test_explain_target_names_as_kubectl(args: list[str]) -> None:
    code, out, err = local("explain", "-n", "ai", *args, "-o", "json")
    assert code == 0, err
    assert json.loads(out)["kind"] == "EffectiveSidecarConfig"
    assert targets(out) == ["Deployment/svc-a"]


@pytest.mark.parametrize("args,expected", [
    (["deploy/svc-a", "deploy/dashboard"], ["Deployment/svc-a", "Deployment/dashboard"]),
    (["deploy", "dashboard", "svc-a"], ["Deployment/dashboard", "Deployment/svc-a"]),
    (["deploy/svc-a", "deploy/svc-a"], ["Deployment/svc-a"]),
])
def test_explain_several_targets(args: list[str], expected: list[str]) -> None:
    code, out, err = local("explain", "-n", "ai", *args, "-o", "json")
    assert code == 0, err
    assert json.loads(out)["kind"] == "List"
    assert targets(out) == expected
    lint_code, _, lint_err = local("lint", "-n", "ai", *args)
    assert lint_code in (0, 3), lint_err


@pytest.mark.parametrize("args,message", [
    (["deployment.batch/svc-a"], "unknown target type 'deployment.batch'"),
    (["deploy", "svc-a/x"], "no separate TYPE"),
    (["spc/x"], "unknown target type 'spc'"),
])
def test_explain_bad_targets_are_usage_errors(args: list[str], message: str) -> None:
    code, out, err = local("explain", "-n", "ai", *args)
    assert (code, out) == (2, "") and message in err


def test_explain_a_missing_one_of_several() -> None:
    assert local("explain", "-n", "ai", "deploy/svc-a", "deploy/nope") == (
        1, "", "error: deployment/nope not found in namespace ai\n")


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    docs = [{"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
             "metadata": {"name": "a", "namespace": "ns", "labels": {"team": "x", "env": "dev"},
                          "creationTimestamp": "2026-01-01T00:00:00Z",
                          "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
             "spec": {"proxy": {"concurrency": 2}}},
            {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
             "metadata": {"name": "b", "namespace": "ns"}, "spec": {}}]
    path = tmp_path / "configs.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_no_headers_and_show_labels(labelled: Path) -> None:
    code, out, _ = run("get", "--local", "-f", str(labelled), "-n", "ns", "--show-labels")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[0] == "NAME" and lines[0].split()[-1] == "LABELS"
    assert lines[1].split()[0] == "a" and lines[1].split()[-1] == "env=dev,team=x"
    assert lines[2].split()[-1] == "<none>"
    code, out, _ = run("get", "--local", "-f", str(labelled), "-n", "ns", "--no-headers")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["a", "b"]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_managed_fields_hidden_unless_asked(labelled: Path, fmt: str) -> None:
    argv = ["get", "--local", "-f", str(labelled), "-n", "ns", "spc", "a", "-o", fmt]
    code, out, _ = run(*argv)
    assert code == 0
    meta = yaml.safe_load(out)["metadata"]
    assert "managedFields" not in meta and meta["labels"] == {"team": "x", "env": "dev"}
    code, out, _ = run(*argv, "--show-managed-fields")
    assert yaml.safe_load(out)["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Apply"}]


def test_verbose_after_the_subcommand() -> None:
    for argv in (["-v", "get"], ["get", "-v"], ["get", "--verbose"]):
        code, out, err = run(*argv, "--local", "-f", "/nonexistent/x.yaml")
        assert (code, out) == (1, ""), argv
        assert "Traceback (most recent call last)" in err, argv
        assert err.endswith("error: the path '/nonexistent/x.yaml' does not exist\n"), argv
    code, _, err = run("get", "--local", "-f", "/nonexistent/x.yaml")
    assert code == 1 and err == "error: the path '/nonexistent/x.yaml' does not exist\n"


def test_empty_field_manager_is_a_usage_error(tmp_path: Path) -> None:
    # The kubeconfig does not exist: had the request been attempted, this would be exit 1.
    code, out, err = run("apply", "-f", EXAMPLES, "--field-manager", "",
                         "--kubeconfig", str(tmp_path / "none"))
    assert (code, out) == (2, "")
    assert "Invalid value for '--field-manager': must not be empty" in err


def test_files_from_stdin_process_substitution_and_dev_null() -> None:
    text = (ROOT / "examples" / "30-ai.yaml").read_text()
    expected = local("get", "-A", "-o", "name")
    from_stdin = run("get", "--local", "-f", "/dev/stdin", "-A", "-o", "name", stdin=text)
    assert from_stdin[0] == 0 and from_stdin[1] in expected[1]
    assert "perf-sensitive" in from_stdin[1]
    read_fd, write_fd = os.pipe()           # what bash's <(...) hands over: /dev/fd/N, a pipe
    os.write(write_fd, text.encode())
    os.close(write_fd)
    try:
        piped = run("get", "--local", "-f", f"/dev/fd/{read_fd}", "-A", "-o", "name",
                    pass_fds=(read_fd,))
    finally:
        os.close(read_fd)
    assert piped == from_stdin
    empty = run("get", "--local", "-f", "/dev/null", "-A")
    assert empty == (0, "", "No resources found in any namespace.\n")


def test_closed_pipe_is_quiet(tmp_path: Path) -> None:
    docs = [{"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
             "metadata": {"name": f"config-{i:05d}", "namespace": "ns"}, "spec": {}}
            for i in range(3000)]
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    r = subprocess.run(f"'{MESHCFG}' get --local -f '{path}' -n ns -o name | head -1; "
                       "echo \"status ${PIPESTATUS[0]}\"", shell=True, executable="/bin/bash",
                       capture_output=True, text=True, timeout=120)
    assert r.stdout == "sidecarproxyconfig.meshcfg.io/config-00000\nstatus 1\n"
    assert r.stderr == ""
