"""kubectl habits against the real API server: delete --all, delete -f next to other kinds
(skipped as apply skips them), get spc and managedFields on live objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cluster.livelib import Meshcfg, deployment, kubectl_apply, spc, write
from clusterlib import KubeCluster

pytestmark = pytest.mark.cluster


def names(cluster: KubeCluster, namespace: str) -> list[str]:
    doc = cluster.get_json("sidecarproxyconfigs.meshcfg.io", "-n", namespace)
    return sorted(item["metadata"]["name"] for item in doc["items"])


def test_delete_all(meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str) -> None:
    kubectl_apply(kube_cluster, spc("a", test_namespace), spc("b", test_namespace))
    dry = meshcfg("delete", "--all", "-n", test_namespace, "--dry-run=server")
    assert (dry.code, dry.err) == (0, "")
    assert dry.out == ('sidecarproxyconfig.meshcfg.io "a" deleted (server dry run)\n'
                       'sidecarproxyconfig.meshcfg.io "b" deleted (server dry run)\n')
    assert names(kube_cluster, test_namespace) == ["a", "b"]
    run = meshcfg("delete", "--all", "-n", test_namespace)
    assert (run.code, run.out) == (0, 'sidecarproxyconfig.meshcfg.io "a" deleted\n'
                                      'sidecarproxyconfig.meshcfg.io "b" deleted\n')
    assert names(kube_cluster, test_namespace) == []
    again = meshcfg("delete", "--all", "-n", test_namespace)
    assert (again.code, again.out, again.err) == (0, "No resources found\n", "")


@pytest.mark.parametrize("args,message", [
    (["a", "--all"], "give NAME..., -f PATH or --all"),
    ([], "give NAME..., -f PATH or --all"),
    (["a", "-A"], "-A needs --all"),
])
def test_delete_usage(meshcfg: Meshcfg, args: list[str], message: str) -> None:
    run = meshcfg("delete", *args)
    assert (run.code, run.out) == (2, "") and message in run.err


def test_delete_file_skips_other_kinds_as_apply_does(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                                     test_namespace: str, tmp_path: Path) -> None:
    path = write(tmp_path / "app.yaml", deployment("web", test_namespace, {"app": "web"}),
                 spc("web-proxy", test_namespace, {"proxy": {"concurrency": 2}}))
    applied = meshcfg("apply", "-f", str(path))
    assert applied.code == 0, applied.err
    note = f"{path}: document 1: Deployment {test_namespace}/web: not a SidecarProxyConfig, skipped"
    assert applied.err == f"{note} (apply it with kubectl apply)\n"
    deleted = meshcfg("delete", "-f", str(path))
    assert (deleted.code, deleted.out) == (0, 'sidecarproxyconfig.meshcfg.io "web-proxy" deleted\n')
    assert deleted.err == f"{note} (delete it with kubectl delete)\n"
    assert names(kube_cluster, test_namespace) == []


def test_get_spc_live_hides_managed_fields(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                           test_namespace: str) -> None:
    kubectl_apply(kube_cluster, spc("one", test_namespace, labels={"team": "x"}),
                  spc("two", test_namespace))
    listed = meshcfg("get", "spc", "-n", test_namespace, "--no-headers", "--show-labels")
    assert listed.code == 0, listed.err
    rows = [line.split() for line in listed.out.splitlines()]
    assert [(r[0], r[-1]) for r in rows] == [("one", "team=x"), ("two", "<none>")]
    assert all(r[-2].endswith("s") for r in rows)       # AGE of a just-created object: 0s..119s
    one = meshcfg("get", "sidecarproxyconfigs", "one", "-n", test_namespace, "-o", "yaml")
    meta = yaml.safe_load(one.out)["metadata"]
    assert "managedFields" not in meta and meta["uid"]
    shown = meshcfg("get", "spc/one", "-n", test_namespace, "-o", "yaml", "--show-managed-fields")
    managers = [f["manager"] for f in yaml.safe_load(shown.out)["metadata"]["managedFields"]]
    live = kube_cluster.get_json("sidecarproxyconfigs.meshcfg.io", "one", "-n", test_namespace,
                                 "--show-managed-fields")
    assert managers == [f["manager"] for f in live["metadata"]["managedFields"]] != []


def run_with_stderr_on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """(exit, stdout, what the terminal on stderr received)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    received = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:          # EIO: the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    out = proc.communicate(timeout=300)[0]
    os.close(master)
    return proc.returncode, out, received.decode()


def test_progress_on_a_terminal_only(kube_cluster: KubeCluster, test_namespace: str,
                                     crd: None, tmp_path: Path) -> None:
    docs = [spc(f"c-{i:03d}", test_namespace, {"selector": {"matchLabels": {"n": str(i)}}})
            for i in range(150)]
    path = write(tmp_path / "many.yaml", *docs)
    argv = [str(Path(sys.executable).parent / "kubectl-meshcfg"), "apply", "-f", str(path),
            "--dry-run=server"]
    env = dict(os.environ, KUBECONFIG=str(kube_cluster.kubeconfig))
    code, out, terminal = run_with_stderr_on_a_terminal(argv, env)
    assert code == 0
    assert out.count("serverside-applied (server dry run)\n") == 150
    assert "\r\x1b[Kvalidating (server dry run): 150/150" in terminal
    assert terminal.endswith("\r\x1b[K")             # the line is erased at the end
    piped = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, out, "")
