"""Who and where: kubeconfig files and contexts as kubectl reads them, RBAC with real
ServiceAccount tokens (manifests/rbac), and the API errors: unreachable, 401, 403, 404,
CRD missing. Each error is one stderr line and exit 1, no traceback without -v."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml
from builders import kube_context
from clusterlib import KubeCluster

from kubectl_meshcfg.kube import resources

from .livelib import (
    RBAC_DIR,
    ROOT,
    Meshcfg,
    kubectl_apply,
    pod,
    spc,
    write,
)

pytestmark = pytest.mark.cluster
OTHER_CA = Path(certifi.where())       # real CAs, none of them the test cluster's


# ---- kubeconfig and context -------------------------------------------------------------------

def admin_parts(cluster: KubeCluster) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """(clusters entry, users entry, cluster name, user name) of the admin kubeconfig."""
    out = cluster.kubectl("config", "view", "--raw", "--flatten", "--minify", "-o", "yaml")
    doc = yaml.safe_load(out.stdout)
    return doc["clusters"][0], doc["users"][0], doc["clusters"][0]["name"], doc["users"][0]["name"]


@pytest.fixture
def two_files(kube_cluster: KubeCluster, test_namespace: str, mesh_ns: str,
              tmp_path: Path) -> str:
    """KUBECONFIG=a:b. a: cluster, user, context `ctx-a` (namespace test_namespace), current
    context ctx-a. b: context `ctx-b` (namespace mesh_ns), a competing `ctx-a` (ignored: the
    first file wins) and current-context ctx-b (ignored too)."""
    cluster_entry, user_entry, cname, uname = admin_parts(kube_cluster)
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster_entry],
        "users": [user_entry], "contexts": [kube_context("ctx-a", cname, uname, test_namespace)],
        "current-context": "ctx-a"}))
    b.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "contexts": [kube_context("ctx-b", cname, uname, mesh_ns),
                     kube_context("ctx-a", cname, uname, "kube-system")],
        "current-context": "ctx-b"}))
    kubectl_apply(kube_cluster, pod("in-a", test_namespace), pod("in-b", mesh_ns))
    return f"{a}:{tmp_path / 'missing.yaml'}:{b}"


def names(run_out: str) -> list[str]:
    return [i["target"]["name"] for i in yaml.safe_load(run_out)["items"]]


def test_kubeconfig_list_and_context_namespace(meshcfg: Meshcfg, two_files: str,
                                               kube_cluster: KubeCluster) -> None:
    env = {"KUBECONFIG": two_files}
    # The context's namespace is the default namespace; the first file's current-context wins.
    assert names(meshcfg("explain", "-o", "json", env=env).out) == ["in-a"]
    assert names(meshcfg("explain", "--context", "ctx-b", "-o", "json", env=env).out) == [
        "in-b"]
    # -n beats the context's namespace.
    ctx_b_ns = meshcfg.mesh_ns
    assert names(meshcfg("explain", "--context", "ctx-a", "-n", ctx_b_ns, "-o", "json",
                         env=env).out) == ["in-b"]
    # The same answers as the same-version kubectl with the same KUBECONFIG.
    proc = subprocess.run([str(kube_cluster.kubectl_bin), "get", "pods", "-o", "name"],
                          env=dict(kube_cluster.env, KUBECONFIG=two_files),
                          capture_output=True, text=True, check=True)
    assert proc.stdout == "pod/in-a\n"


def test_kubeconfig_flag_beats_env_and_unknown_context(meshcfg: Meshcfg, two_files: str,
                                                       tmp_path: Path) -> None:
    a = two_files.split(":")[0]
    env = {"KUBECONFIG": str(tmp_path / "nothing-here")}
    run = meshcfg("explain", "--kubeconfig", a, "-o", "json", env=env)
    assert run.code == 0, run.err
    assert names(run.out) == ["in-a"]
    unknown = meshcfg("explain", "--kubeconfig", a, "--context", "nope", env=env)
    assert unknown.code == 1
    assert unknown.out == ""
    assert unknown.err.startswith('error: context "nope" does not exist')
    assert unknown.err.count("\n") == 1
    missing = meshcfg("get", "--kubeconfig", str(tmp_path / "absent"), env=env)
    assert missing.code == 1
    assert "no such file" in missing.err


def test_apply_goes_to_the_context_namespace(meshcfg: Meshcfg, two_files: str,
                                             kube_cluster: KubeCluster, test_namespace: str,
                                             tmp_path: Path) -> None:
    doc = spc("ctx", "x")
    del doc["metadata"]["namespace"]
    path = write(tmp_path / "c.yaml", doc)
    run = meshcfg("apply", "-f", str(path), env={"KUBECONFIG": two_files})
    assert run.code == 0, run.err
    assert kube_cluster.exists("spc", "ctx", "-n", test_namespace)


# ---- RBAC -----------------------------------------------------------------------------------

def rbac_docs(name: str, mesh_namespace: str) -> list[dict[str, Any]]:
    """The manifest's documents, its istio-system Role moved to the test's mesh namespace."""
    docs = [d for d in yaml.safe_load_all((RBAC_DIR / f"{name}.yaml").read_text()) if d]
    for doc in docs:
        if doc["metadata"].get("namespace") == "istio-system":
            doc["metadata"]["namespace"] = mesh_namespace
        for subject in doc.get("subjects") or []:
            if subject.get("namespace") == "istio-system":
                subject["namespace"] = mesh_namespace
    return docs


def token_kubeconfig(cluster: KubeCluster, role: str, namespace: str, mesh_namespace: str,
                     account: str) -> Path:
    """A kubeconfig with only the token of `grant`'s ServiceAccount."""
    return cluster.kubeconfig_for_token(grant(cluster, role, namespace, mesh_namespace, account),
                                        namespace)


def grant(cluster: KubeCluster, role: str, namespace: str, mesh_namespace: str,
          account: str) -> str:
    """A ServiceAccount in `namespace` bound to ClusterRole `role` there, plus the mesh
    reader Role in the mesh namespace; returns its token."""
    kubectl_apply(cluster, *rbac_docs(role, mesh_namespace),
                  *rbac_docs("meshcfg-readonly", mesh_namespace))
    token = cluster.service_account_token(namespace, account)
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    kubectl_apply(cluster, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": f"{account}-{role}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [subject]}, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": f"{account}-mesh-config", "namespace": mesh_namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": "meshcfg-mesh-reader"},
        "subjects": [subject]})
    return token


def test_readonly_token_can_read_but_not_apply(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                               test_namespace: str, mesh_ns: str,
                                               tmp_path: Path) -> None:
    ns = test_namespace
    kubectl_apply(kube_cluster, pod("p", ns, {"app": "p"}))
    path = write(tmp_path / "c.yaml", spc("cfg", ns, {"proxy": {"concurrency": 2,
                                                                "logLevel": "info"}}))
    assert meshcfg("apply", "-f", str(path)).code == 0
    reader = Meshcfg(kube_cluster, mesh_ns,
                     token_kubeconfig(kube_cluster, "meshcfg-readonly", ns, mesh_ns, "viewer"))

    got = reader("get")
    assert got.code == 0, got.err
    assert got.out.splitlines()[1].split()[0] == "cfg"
    explained = reader("explain", "pod/p", "-o", "json")
    assert explained.code == 0, explained.err
    assert explained.json()["fields"]["proxy.logLevel"]["source"]["name"] == "cfg"
    assert reader("lint").code == 0

    refused = reader("apply", "-f", str(path))
    assert refused.code == 1
    assert refused.out == ""
    assert refused.err == (
        f'error: forbidden: User "system:serviceaccount:{ns}:viewer" cannot patch '
        f'sidecarproxyconfigs.meshcfg.io "cfg" in namespace "{ns}" (meshcfg-editor grants '
        "it: manifests/rbac/meshcfg-editor.yaml)\n")
    deleted = reader("delete", "cfg")
    assert deleted.code == 1
    assert "cannot delete sidecarproxyconfigs.meshcfg.io" in deleted.err
    assert kube_cluster.exists("spc", "cfg", "-n", ns)

    # Reading another namespace is refused with verb, resource and namespace.
    other = reader("get", "-n", "kube-system")
    assert other.code == 1
    assert other.err == (f'error: forbidden: User "system:serviceaccount:{ns}:viewer" cannot '
                         'list sidecarproxyconfigs.meshcfg.io in namespace "kube-system" '
                         "(meshcfg-readonly grants it: manifests/rbac/meshcfg-readonly.yaml)\n")


def test_editor_token_can_apply_and_delete(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                           test_namespace: str, mesh_ns: str,
                                           tmp_path: Path) -> None:
    ns = test_namespace
    editor = Meshcfg(kube_cluster, mesh_ns,
                     token_kubeconfig(kube_cluster, "meshcfg-editor", ns, mesh_ns, "editor"))
    path = write(tmp_path / "c.yaml", spc("cfg", ns, {"proxy": {"concurrency": 3}}))
    applied = editor("apply", "-f", str(path))
    assert applied.code == 0, applied.err
    assert editor("diff", "-f", str(path)).code == 0
    assert editor("delete", "cfg").code == 0
    assert not kube_cluster.exists("spc", "cfg", "-n", ns)


def test_bad_token_is_401(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                          test_namespace: str) -> None:
    bad = Meshcfg(kube_cluster, meshcfg.mesh_ns,
                  kube_cluster.kubeconfig_for_token("not-a-real-token", test_namespace))
    run = bad("get")
    assert run.code == 1
    assert run.out == ""
    assert run.err.startswith(f"error: the API server at {kube_cluster.server} rejected the "
                              "credentials")
    assert "401 Unauthorized" in run.err
    assert run.err.count("\n") == 1


def test_unreachable(meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,
                     tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = kube_cluster.kubeconfig_for_token("x", test_namespace)
    config.write_text(config.read_text().replace(kube_cluster.server,
                                                 f"https://127.0.0.1:{port}"))
    run = Meshcfg(kube_cluster, meshcfg.mesh_ns, config)("explain")
    assert run.code == 1
    assert run.out == ""
    assert run.err == (f"error: cannot reach the Kubernetes API server at "
                       f"https://127.0.0.1:{port} (context \"c\"): connection refused - is the "
                       "cluster running and is the kubeconfig right?\n")
    verbose = Meshcfg(kube_cluster, meshcfg.mesh_ns, config)("-v", "explain")
    assert "Traceback" in verbose.err


def test_wrong_ca_is_a_tls_error(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                 test_namespace: str, tmp_path: Path) -> None:
    config = kube_cluster.kubeconfig_for_token("x", test_namespace)
    config.write_text(config.read_text().replace(str(kube_cluster.ca_file),
                                                 str(tmp_path / "absent.crt")))
    run = Meshcfg(kube_cluster, meshcfg.mesh_ns, config)("get")
    assert run.code == 1
    assert run.err == f"error: cannot read certificate-authority {tmp_path / 'absent.crt'}: " \
                      "No such file or directory\n"
    # A real CA, but not the cluster's: the TLS handshake fails.
    config.write_text(config.read_text().replace(str(tmp_path / "absent.crt"),
                                                 str(OTHER_CA)))
    run = Meshcfg(kube_cluster, meshcfg.mesh_ns, config)("get")
    assert run.code == 1
    assert run.err.startswith(f"error: cannot reach the Kubernetes API server at "
                              f"{kube_cluster.server}")
    assert "CERTIFICATE_VERIFY_FAILED" in run.err
    assert run.err.count("\n") == 1


def test_crd_missing(meshcfg: Meshcfg, monkeypatch: pytest.MonkeyPatch,
                     test_namespace: str, tmp_path: Path) -> None:
    """The real API server's answer for a resource group that nothing serves; the shared
    cluster keeps its CRD (other tests use it), so the client asks for an absent group."""
    absent = resources.Resource("SidecarProxyConfig", "absent.meshcfg.io", "v1alpha1",
                           "sidecarproxyconfigs")
    monkeypatch.setattr(resources, "SIDECAR_CONFIGS", absent)
    hint = "install it with: kubectl apply -f manifests/crds/"
    for args in (["get", "-n", test_namespace], ["explain", "-n", test_namespace]):
        run = meshcfg(*args)
        assert run.code == 1, run
        assert run.out == ""
        assert run.err.count("\n") == 1
        assert run.err.startswith("error: the cluster has no SidecarProxyConfig resource")
        assert hint in run.err
    path = write(tmp_path / "c.yaml", spc("x", test_namespace))
    applied = meshcfg("apply", "-f", str(path))
    assert applied.code == 1
    assert hint in applied.err


def test_missing_namespace_on_apply(meshcfg: Meshcfg, tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", spc("x", "no-such-namespace-here"))
    run = meshcfg("apply", "-f", str(path))
    assert run.code == 1
    assert run.err == 'error: namespace "no-such-namespace-here" not found\n'


def test_runs_as_a_kubectl_plugin(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                  test_namespace: str, tmp_path: Path) -> None:
    """`kubectl meshcfg ...` through the same-version kubectl's plugin lookup on PATH, as
    separate processes: stdout, stderr and exit code as the user sees them."""
    venv_bin = ROOT / ".venv" / "bin"
    env = dict(kube_cluster.env, PATH=f"{venv_bin}:/usr/bin:/bin")
    path = write(tmp_path / "c.yaml", spc("plugged", test_namespace, {"proxy": {"concurrency": 2}}))

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(kube_cluster.kubectl_bin), "meshcfg", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    applied = kubectl("apply", "-f", str(path))
    assert (applied.returncode, applied.stdout, applied.stderr) == (
        0, "sidecarproxyconfig.meshcfg.io/plugged serverside-applied\n", "")
    got = kubectl("get", "-n", test_namespace, f"--istio-namespace={meshcfg.mesh_ns}",
                  "-o", "name")
    assert (got.returncode, got.stdout, got.stderr) == (
        0, "sidecarproxyconfig.meshcfg.io/plugged\n", "")
    missing = kubectl("delete", "nope", "-n", test_namespace)
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr == (f'error: sidecarproxyconfigs.meshcfg.io "nope" in namespace '
                              f'"{test_namespace}" not found\n')


def test_exec_credential_plugin(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                test_namespace: str, tmp_path: Path) -> None:
    """A kubeconfig user with an exec plugin (relative command path, resolved against the
    kubeconfig's directory as kubectl does) that hands out a ServiceAccount token."""
    token = grant(kube_cluster, "meshcfg-readonly", test_namespace, meshcfg.mesh_ns,
                  "plugin-user")
    (tmp_path / "bin").mkdir()
    plugin = tmp_path / "bin" / "cred"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": token}}
    plugin.write_text(f"#!/bin/sh\ncat <<'END'\n{json.dumps(credential)}\nEND\n")
    plugin.chmod(0o755)
    config = tmp_path / "exec.kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": kube_cluster.server,
                                               "certificate-authority": str(kube_cluster.ca_file)}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/cred",
            "interactiveMode": "Never"}}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u",
                                               "namespace": test_namespace}}],
        "current-context": "c"}))
    user = Meshcfg(kube_cluster, meshcfg.mesh_ns, config)
    run = user("get")
    assert run.code == 0, run.err
    assert (run.out, run.err) == ("", f"No resources found in {test_namespace} namespace.\n")
    refused = user("get", "-n", "default")
    assert refused.code == 1
    assert f"system:serviceaccount:{test_namespace}:plugin-user" in refused.err
