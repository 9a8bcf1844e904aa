"""kubectl finds the one-file binary by its plugin lookup (kubectl-meshcfg on PATH) and runs
it: arguments, output and exit codes pass through as with the virtualenv entry point."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pkglib import ROOT

pytestmark = pytest.mark.packaging

EXAMPLES = str(ROOT / "examples")


@pytest.fixture
def plugin_path(plugin_binary: Path, kubectl_bin: Path, tmp_path: Path) -> Iterator[str]:
    """A PATH with kubectl and the binary only (never the virtualenv's kubectl-meshcfg)."""
    plugins, tools = tmp_path / "plugins", tmp_path / "tools"
    plugins.mkdir()
    tools.mkdir()
    (plugins / "kubectl-meshcfg").symlink_to(plugin_binary)
    (tools / "kubectl").symlink_to(kubectl_bin)
    yield f"{plugins}:{tools}:/usr/bin:/bin"


def kubectl(path: str, *args: str) -> tuple[int, str, str]:
    r = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=120,
                       env={"PATH": path, "HOME": "/nonexistent", "KUBECONFIG": "/nonexistent"})
    return r.returncode, r.stdout, r.stderr


def venv(venv_plugin: Path, *args: str) -> tuple[int, str, str]:
    r = subprocess.run([str(venv_plugin), *args], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def test_plugin_list_shows_the_binary(plugin_path: str) -> None:
    code, out, err = kubectl(plugin_path, "plugin", "list")
    assert code == 0, err
    assert "compatible plugins are available" in out
    assert [line for line in out.splitlines() if line.startswith("/")] == [
        plugin_path.split(":")[0] + "/kubectl-meshcfg"]


@pytest.mark.parametrize("args", [
    ["--version"],
    ["explain", "--local", "-f", EXAMPLES, "deployment/svc-a", "-n", "ai", "-o", "yaml"],
    ["lint", "--local", "-f", EXAMPLES, "-A"],                 # exit 3 passes through
    ["get", "--local", "-f", EXAMPLES, "-A", "-o", "name"],
    ["explain", "--local", "-f", EXAMPLES, "pod/nope", "-n", "ai"],   # exit 1
    ["get", "--bogus"],                                         # exit 2
], ids=["version", "explain", "lint", "get", "not-found", "usage"])
def test_kubectl_meshcfg_is_the_binary(plugin_path: str, venv_plugin: Path, args: list[str]) -> None:
    through_kubectl = kubectl(plugin_path, "meshcfg", *args)
    assert through_kubectl == venv(venv_plugin, *args)
    assert through_kubectl[0] in (0, 1, 2, 3)


def test_stdin_reaches_the_plugin(plugin_path: str, venv_plugin: Path) -> None:
    manifest = (ROOT / "examples" / "30-ai.yaml").read_text()
    argv = ["get", "--local", "-f", "-", "-A", "-o", "name"]
    r = subprocess.run(["kubectl", "meshcfg", *argv], input=manifest, capture_output=True,
                       text=True, timeout=120, env={"PATH": plugin_path, "HOME": "/nonexistent"})
    expected = subprocess.run([str(venv_plugin), *argv], input=manifest, capture_output=True,
                              text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, expected.stdout)
    assert "sidecarproxyconfig.meshcfg.io/" in r.stdout


def test_completion_through_kubectl_with_the_binary(plugin_path: str, plugin_binary: Path) -> None:
    """kubectl_complete-meshcfg as a link to the one binary, found and run by kubectl."""
    plugins = Path(plugin_path.split(":")[0])
    (plugins / "kubectl_complete-meshcfg").symlink_to(plugin_binary)

    def complete(*words: str) -> list[str]:
        r = subprocess.run(["kubectl", "__complete", "meshcfg", *words], capture_output=True,
                           text=True, timeout=120, env={"PATH": plugin_path, "HOME": "/nonexistent"})
        assert r.returncode == 0 and "kubectl_complete-meshcfg" in r.stderr, r.stderr
        return r.stdout.splitlines()

    assert complete("get", "-o", "y") == ["yaml", ":4"]
    assert complete("explain", "--local", "-f", EXAMPLES, "-n", "ai", "deploy/") == [
        "deploy/dashboard", "deploy/svc-a", ":4"]
