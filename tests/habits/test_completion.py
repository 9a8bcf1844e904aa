"""Completion, driven the way kubectl drives it: the real kubectl's `__complete meshcfg ...`
finds `kubectl_complete-meshcfg` on PATH and runs it; and `completion bash` sourced into a
real bash. Live names come from the test cluster."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster.livelib import Meshcfg, kubectl_apply, pod, spc
from clusterlib import KubeCluster, run_testcluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = str(ROOT / "examples")
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def kubectl_bin() -> Path:
    return Path(run_testcluster("bin", "kubectl"))


@pytest.fixture
def path(kubectl_bin: Path, tmp_path: Path) -> Iterator[str]:
    """kubectl, the plugin and its completion executable, nothing else of ours."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("kubectl-meshcfg", "kubectl_complete-meshcfg"):
        (bin_dir / name).symlink_to(VENV_BIN / name)
    (bin_dir / "kubectl").symlink_to(kubectl_bin)
    yield f"{bin_dir}:/usr/bin:/bin"


def kubectl_complete(path: str, *words: str, kubeconfig: str = "/nonexistent") -> tuple[list[str], str]:
    """(completions, directive line) of `kubectl __complete meshcfg WORDS...`."""
    r = subprocess.run(["kubectl", "__complete", "meshcfg", *words], capture_output=True,
                       text=True, timeout=120, cwd=ROOT,
                       env={"PATH": path, "HOME": "/nonexistent", "KUBECONFIG": kubeconfig})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "About to call:" in r.stderr and "kubectl_complete-meshcfg" in r.stderr
    return [line.split("\t")[0] for line in lines[:-1]], lines[-1]


def test_subcommands(path: str) -> None:
    values, directive = kubectl_complete(path, "")
    assert values == ["admission", "apply", "completion", "delete", "diff", "explain", "get",
                      "lint", "render", "restart", "rollout-test", "sync"]
    assert directive == ":4"           # no file names
    assert kubectl_complete(path, "ex") == (["explain"], ":4")


def test_flags_and_output_values(path: str) -> None:
    flags, _ = kubectl_complete(path, "get", "--")
    assert {"--no-headers", "--show-labels", "--show-managed-fields", "--output", "--selector",
            "--namespace", "--all-namespaces", "--verbose"} <= set(flags)
    assert kubectl_complete(path, "get", "-o", "") == (
        ["table", "wide", "yaml", "json", "name", "jsonpath=", "custom-columns="], ":4")
    assert kubectl_complete(path, "explain", "-o", "j") == (["json"], ":4")
    assert kubectl_complete(path, "completion", "") == (["bash", "zsh", "fish"], ":4")


def test_file_arguments_complete_as_files(path: str) -> None:
    assert kubectl_complete(path, "apply", "-f", "exa") == ([], ":0")


def test_target_types_then_names_from_the_files(path: str) -> None:
    local = ["explain", "--local", "-f", EXAMPLES, "-n", "ai"]
    types, _ = kubectl_complete(path, *local, "")
    assert types == ["pod", "deployment", "statefulset", "daemonset", "replicaset", "job", "cronjob"]
    assert kubectl_complete(path, *local, "deploy/") == (["deploy/dashboard", "deploy/svc-a"], ":4")
    assert kubectl_complete(path, *local, "deployment", "s") == (["svc-a"], ":4")
    assert kubectl_complete(path, *local, "deployment", "svc-a", "") == (["dashboard"], ":4")
    assert kubectl_complete(path, "render", "--local", "-f", EXAMPLES, "-n", "prod",
                            "deploy/") == (["deploy/checkout"], ":4")


def test_config_names_from_the_files(path: str) -> None:
    local = ["--local", "-f", EXAMPLES, "-n", "ai"]
    assert kubectl_complete(path, "get", *local, "") == (["spc", "perf-sensitive", "perf-tiered"], ":4")
    assert kubectl_complete(path, "get", *local, "spc", "perf-s") == (["perf-sensitive"], ":4")


def test_no_cluster_means_no_names_and_no_noise(path: str) -> None:
    assert kubectl_complete(path, "explain", "deploy/") == ([], ":4")
    assert kubectl_complete(path, "get", "") == (["spc"], ":4")


def test_completion_bash_in_a_real_bash() -> None:
    script = subprocess.run([str(VENV_BIN / "kubectl-meshcfg"), "completion", "bash"],
                            capture_output=True, text=True, check=True).stdout
    probe = (f'PATH="{VENV_BIN}:$PATH"\n{script}\n'
             'COMP_WORDS=(kubectl-meshcfg get -o y); COMP_CWORD=3\n'
             '_kubectl_meshcfg_completion kubectl-meshcfg\n'
             'printf "%s\\n" "${COMPREPLY[@]}"\n'
             f'COMPREPLY=(); COMP_WORDS=(kubectl-meshcfg explain --local -f {EXAMPLES} -n ai '
             'deploy/s); COMP_CWORD=7\n_kubectl_meshcfg_completion kubectl-meshcfg\n'
             'printf "%s\\n" "${COMPREPLY[@]}"\n')
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["yaml", "deploy/svc-a"]


@pytest.mark.parametrize("shell,marker", [("zsh", "#compdef kubectl-meshcfg"),
                                          ("fish", "complete --no-files --command kubectl-meshcfg")])
def test_completion_scripts_for_zsh_and_fish(shell: str, marker: str) -> None:
    r = subprocess.run([str(VENV_BIN / "kubectl-meshcfg"), "completion", shell],
                       capture_output=True, text=True)
    assert r.returncode == 0 and marker in r.stdout
    assert "_KUBECTL_MESHCFG_COMPLETE" in r.stdout


@pytest.mark.cluster
def test_live_names(path: str, meshcfg: Meshcfg, kube_cluster: KubeCluster,
                    test_namespace: str) -> None:
    kubectl_apply(kube_cluster, spc("alpha", test_namespace), spc("beta", test_namespace),
                  pod("web-1", test_namespace), pod("web-2", test_namespace))
    config = str(kube_cluster.kubeconfig)
    ns = ["-n", test_namespace]
    assert kubectl_complete(path, "get", *ns, "", kubeconfig=config) == (["spc", "alpha", "beta"], ":4")
    assert kubectl_complete(path, "delete", *ns, "b", kubeconfig=config) == (["beta"], ":4")
    assert kubectl_complete(path, "explain", *ns, "pod/", kubeconfig=config) == (
        ["pod/web-1", "pod/web-2"], ":4")
    assert kubectl_complete(path, "lint", *ns, "po", "web-1", "", kubeconfig=config) == (["web-2"], ":4")
    assert kubectl_complete(path, "explain", *ns, "deploy/", kubeconfig=config) == ([], ":4")
