"""`kubectl meshcfg apply` and `delete` against the real API server: server-side apply with
its field manager, dry runs that leave nothing behind, all-or-nothing validation, conflicts
with another field manager and --force-conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from clusterlib import KubeCluster

from .livelib import Meshcfg, kubectl_apply, spc, write

pytestmark = pytest.mark.cluster


def managers(cluster: KubeCluster, ns: str, name: str) -> dict[str, str]:
    obj = cluster.get_json("sidecarproxyconfigs.meshcfg.io", name, "-n", ns,
                           "--show-managed-fields")
    return {m["manager"]: m["operation"] for m in obj["metadata"]["managedFields"]}


def test_apply_creates_with_field_manager(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                          test_namespace: str, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml",
                 spc("a", test_namespace, {"proxy": {"concurrency": 3}}),
                 spc("b", test_namespace, {"selector": {"matchLabels": {"app": "x"}},
                                           "proxy": {"logLevel": "debug"}}))
    run = meshcfg("apply", "-f", str(path))
    assert run.code == 0, run.err
    assert run.out == ("sidecarproxyconfig.meshcfg.io/a serverside-applied\n"
                       "sidecarproxyconfig.meshcfg.io/b serverside-applied\n")
    assert run.err == ""
    assert managers(kube_cluster, test_namespace, "a") == {"kubectl-meshcfg": "Apply"}
    obj = kube_cluster.get_json("spc", "a", "-n", test_namespace)
    assert obj["spec"] == {"proxy": {"concurrency": 3}}
    # Applying again is a no-op with the same output.
    again = meshcfg("apply", "-f", str(path))
    assert (again.code, again.out) == (0, run.out)


def test_apply_uses_namespace_flag_and_custom_field_manager(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,
        tmp_path: Path) -> None:
    doc = spc("nsless", test_namespace)
    del doc["metadata"]["namespace"]
    path = write(tmp_path / "c.yaml", doc)
    run = meshcfg("apply", "-f", str(path), "-n", test_namespace, "--field-manager", "ci-bot")
    assert run.code == 0, run.err
    assert managers(kube_cluster, test_namespace, "nsless") == {"ci-bot": "Apply"}


def test_apply_namespace_mismatch_is_refused(meshcfg: Meshcfg, test_namespace: str,
                                             tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", spc("a", test_namespace))
    run = meshcfg("apply", "-f", str(path), "-n", "elsewhere")
    assert run.code == 1
    assert run.out == ""
    assert run.err.count("\n") == 1
    assert "does not match the namespace \"elsewhere\"" in run.err


@pytest.mark.parametrize("mode,suffix", [("client", "(dry run)"),
                                         ("server", "(server dry run)")])
def test_dry_run_leaves_nothing(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                test_namespace: str, tmp_path: Path, mode: str,
                                suffix: str) -> None:
    path = write(tmp_path / "c.yaml", spc("dry", test_namespace, {"proxy": {"concurrency": 1}}))
    run = meshcfg("apply", "-f", str(path), f"--dry-run={mode}")
    assert run.code == 0, run.err
    assert run.out == f"sidecarproxyconfig.meshcfg.io/dry serverside-applied {suffix}\n"
    assert not kube_cluster.exists("spc", "dry", "-n", test_namespace)


def test_invalid_document_writes_nothing(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                         test_namespace: str, tmp_path: Path) -> None:
    good = write(tmp_path / "1-good.yaml", spc("good", test_namespace))
    bad = write(tmp_path / "2-bad.yaml",
                spc("bad", test_namespace, {"proxy": {"concurrency": -1}}))
    run = meshcfg("apply", "-f", str(good), "-f", str(bad))
    assert run.code == 1
    assert run.out == ""
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith(f"error: {bad}: document 1: SidecarProxyConfig "
                               f"{test_namespace}/bad: spec.proxy.concurrency")
    assert not kube_cluster.exists("spc", "good", "-n", test_namespace)


def test_other_kinds_are_skipped_with_a_note(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                             test_namespace: str, tmp_path: Path) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "cm", "namespace": test_namespace}}
    path = write(tmp_path / "mixed.yaml", cm, spc("only", test_namespace))
    run = meshcfg("apply", "-f", str(path))
    assert run.code == 0, run.err
    assert run.out == "sidecarproxyconfig.meshcfg.io/only serverside-applied\n"
    assert "ConfigMap" in run.err and "skipped" in run.err
    assert not kube_cluster.exists("configmap", "cm", "-n", test_namespace)


def test_apply_from_stdin_and_recursive_directory(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                                  test_namespace: str, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "deep.yaml", spc("deep", test_namespace))
    assert meshcfg("apply", "-f", str(tmp_path)).code == 1        # nothing without -R
    run = meshcfg("apply", "-R", "-f", str(tmp_path))
    assert run.code == 0, run.err
    stdin = meshcfg("apply", "-f", "-", input=(tmp_path / "sub" / "deep.yaml").read_text()
                    .replace("name: deep", "name: piped"))
    assert stdin.code == 0, stdin.err
    assert kube_cluster.exists("spc", "piped", "-n", test_namespace)


def test_conflict_with_another_manager_then_force(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                                  test_namespace: str, tmp_path: Path) -> None:
    kubectl_apply(kube_cluster, spc("shared", test_namespace,
                                    {"proxy": {"concurrency": 3, "logLevel": "info"}}),
                  server_side="true", field_manager="platform-team")
    path = write(tmp_path / "mine.yaml", spc("shared", test_namespace,
                                             {"proxy": {"concurrency": 5}}))
    run = meshcfg("apply", "-f", str(path))
    assert run.code == 1
    assert run.out == ""
    assert run.err.count("\n") == 1, run.err
    assert 'field manager "platform-team" owns spec.proxy.concurrency' in run.err
    assert "--force-conflicts" in run.err
    assert "Traceback" not in run.err
    assert kube_cluster.get_json("spc", "shared", "-n", test_namespace)["spec"]["proxy"][
        "concurrency"] == 3

    forced = meshcfg("apply", "-f", str(path), "--force-conflicts")
    assert forced.code == 0, forced.err
    obj = kube_cluster.get_json("spc", "shared", "-n", test_namespace)
    assert obj["spec"]["proxy"] == {"concurrency": 5, "logLevel": "info"}
    assert managers(kube_cluster, test_namespace, "shared") == {
        "platform-team": "Apply", "kubectl-meshcfg": "Apply"}


def test_conflict_in_second_document_writes_nothing(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,
        tmp_path: Path) -> None:
    kubectl_apply(kube_cluster, spc("taken", test_namespace, {"proxy": {"concurrency": 3}}),
                  server_side="true", field_manager="platform-team")
    path = write(tmp_path / "two.yaml", spc("fresh", test_namespace),
                 spc("taken", test_namespace, {"proxy": {"concurrency": 4}}))
    run = meshcfg("apply", "-f", str(path))
    assert run.code == 1
    assert "platform-team" in run.err
    assert not kube_cluster.exists("spc", "fresh", "-n", test_namespace)


def test_verbose_shows_traceback(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                 test_namespace: str, tmp_path: Path) -> None:
    kubectl_apply(kube_cluster, spc("tb", test_namespace, {"proxy": {"concurrency": 3}}),
                  server_side="true", field_manager="platform-team")
    path = write(tmp_path / "tb.yaml", spc("tb", test_namespace, {"proxy": {"concurrency": 4}}))
    run = meshcfg("-v", "apply", "-f", str(path))
    assert run.code == 1
    assert "Traceback" in run.err
    assert run.err.rstrip().splitlines()[-1].startswith(
        f"error: {path}: document 1: SidecarProxyConfig {test_namespace}/tb: apply conflict")


def test_delete(meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,
                tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", spc("one", test_namespace), spc("two", test_namespace))
    assert meshcfg("apply", "-f", str(path)).code == 0
    dry = meshcfg("delete", "one", "-n", test_namespace, "--dry-run=server")
    assert (dry.code, dry.out) == (0, 'sidecarproxyconfig.meshcfg.io "one" deleted '
                                      "(server dry run)\n")
    assert kube_cluster.exists("spc", "one", "-n", test_namespace)
    run = meshcfg("delete", "one", "-n", test_namespace)
    assert (run.code, run.out, run.err) == (0, 'sidecarproxyconfig.meshcfg.io "one" deleted\n',
                                            "")
    assert not kube_cluster.exists("spc", "one", "-n", test_namespace)

    missing = meshcfg("delete", "one", "-n", test_namespace)
    assert missing.code == 1
    assert missing.out == ""
    assert missing.err == (f'error: sidecarproxyconfigs.meshcfg.io "one" in namespace '
                           f'"{test_namespace}" not found\n')
    ignored = meshcfg("delete", "one", "-n", test_namespace, "--ignore-not-found")
    assert (ignored.code, ignored.out, ignored.err) == (0, "", "")

    from_file = meshcfg("delete", "-f", str(path), "--ignore-not-found")
    assert from_file.code == 0
    assert from_file.out == 'sidecarproxyconfig.meshcfg.io "two" deleted\n'
    assert not kube_cluster.exists("spc", "two", "-n", test_namespace)
