"""The krew manifest and release archive, checked field by field, by krew-index's own
validator, and by a real `krew install --manifest --archive` (krew from its Go module)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterlib import KubeCluster
from pkglib import ROOT, Release

pytestmark = pytest.mark.packaging

TEMPLATE = ROOT / "plugins" / "meshcfg.yaml"
VERSION = "v" + tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
PLACEHOLDER = "0" * 64


def manifest(path: Path = TEMPLATE) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def platform(doc: dict[str, Any]) -> dict[str, Any]:
    (only,) = doc["spec"]["platforms"]
    return dict(only)


def rbac_names() -> set[str]:
    docs = [d for p in (ROOT / "manifests" / "rbac").glob("*.yaml")
            for d in yaml.safe_load_all(p.read_text())]
    return {d["metadata"]["name"] for d in docs if d and d["kind"] == "ClusterRole"}


def test_manifest_fields() -> None:
    doc = manifest()
    assert doc["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert doc["kind"] == "Plugin"
    assert doc["metadata"]["name"] == TEMPLATE.stem == "meshcfg"   # krew: file name = plugin name
    spec = doc["spec"]
    assert spec["version"] == VERSION
    assert spec["shortDescription"] and "\n" not in spec["shortDescription"]
    assert len(spec["description"].split()) > 30
    p = platform(doc)
    assert p["selector"] == {"matchLabels": {"os": "linux", "arch": "amd64"}}
    assert p["bin"] == "kubectl-meshcfg"
    assert p["uri"].startswith("https://")
    assert p["uri"].endswith(f"/{VERSION}/kubectl-meshcfg_{VERSION}_linux_amd64.tar.gz")
    assert p["sha256"] == PLACEHOLDER    # the release script fills it; see release_manifest


def test_caveats_install_the_crd_and_name_the_shipped_rbac() -> None:
    caveats = manifest()["spec"]["caveats"]
    store = f"${{KREW_ROOT:-$HOME/.krew}}/store/meshcfg/{VERSION}/manifests"
    assert f'kubectl apply -f "{store}/crds/"' in caveats
    assert f'"{store}/policy/"' in caveats
    assert f'"{store}/rbac/"' in caveats
    assert 'ln -s kubectl-meshcfg "${KREW_ROOT:-$HOME/.krew}/bin/kubectl_complete-meshcfg"' in caveats
    roles = rbac_names()
    assert roles == {"meshcfg-readonly", "meshcfg-editor", "meshcfg-revision-reader",
                     "meshcfg-rollout-tester"}
    assert all(role in caveats for role in roles)


def test_release_manifest_is_the_template_with_the_archive_sha(release: Release) -> None:
    digest = hashlib.sha256(release.archive.read_bytes()).hexdigest()
    released = release.manifest.read_text()
    assert platform(manifest(release.manifest))["sha256"] == digest
    assert released == TEMPLATE.read_text().replace(PLACEHOLDER, digest)
    assert release.manifest.name == TEMPLATE.name
    assert release.archive.name == platform(manifest())["uri"].rsplit("/", 1)[1]


def test_archive_is_reproducible(release: Release, plugin_binary: Path, tmp_path: Path) -> None:
    r = subprocess.run([str(ROOT / "scripts" / "release-plugin"), "--out", str(tmp_path),
                        "--binary", str(plugin_binary)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    again = tmp_path / release.archive.name
    assert again.read_bytes() == release.archive.read_bytes()
    assert (tmp_path / "meshcfg.yaml").read_text() == release.manifest.read_text()


def test_archive_unpacks_to_the_named_binary(release: Release, plugin_binary: Path) -> None:
    p = platform(manifest(release.manifest))
    with tarfile.open(release.archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for op in p["files"]:
            assert op["from"] in members, op
        binary = members[p["bin"]]
        assert binary.isfile() and binary.mode == 0o755
        assert tar.extractfile(binary).read() == plugin_binary.read_bytes()  # type: ignore[union-attr]
        for name, member in members.items():
            assert member.uid == 0 and member.gid == 0 and not member.issym(), name
            if member.isfile() and name != p["bin"]:
                assert tar.extractfile(member).read() == (ROOT / name).read_bytes(), name  # type: ignore[union-attr]
    shipped = {n for n in members if n.endswith(".yaml")}
    assert shipped == {str(q.relative_to(ROOT)) for sub in ("crds", "policy", "rbac")
                       for q in (ROOT / "manifests" / sub).glob("*.yaml")}
    assert "LICENSE" in members and "Apache License" in (ROOT / "LICENSE").read_text()[:200]


def test_krew_index_validator_accepts_template_and_release(krew_bin: Path, release: Release) -> None:
    for path in (TEMPLATE, release.manifest):
        r = subprocess.run([str(krew_bin / "validate-krew-manifest"), "-manifest", str(path),
                            "-skip-install"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "structural validation OK" in r.stderr


def test_krew_index_validator_rejects_a_broken_manifest(krew_bin: Path, tmp_path: Path) -> None:
    broken = tmp_path / "meshcfg.yaml"
    broken.write_text(TEMPLATE.read_text().replace(f'sha256: "{PLACEHOLDER}"', 'sha256: "abc"'))
    r = subprocess.run([str(krew_bin / "validate-krew-manifest"), "-manifest", str(broken),
                        "-skip-install"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "sha256" in r.stderr


@pytest.fixture
def krew_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="meshcfg-krew-root-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def krew(krew_bin: Path, krew_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(krew_root), "KREW_ROOT": str(krew_root)}
    return subprocess.run([str(krew_bin / "krew"), *args], capture_output=True, text=True,
                          timeout=120, env=env, stdin=subprocess.DEVNULL)


def test_krew_refuses_the_archive_against_the_placeholder(krew_bin: Path, krew_root: Path,
                                                          release: Release) -> None:
    r = krew(krew_bin, krew_root, "install", f"--manifest={TEMPLATE}", f"--archive={release.archive}")
    assert r.returncode != 0
    assert "checksum does not match" in r.stderr
    assert not (krew_root / "bin" / "kubectl-meshcfg").exists()


def exec_kubeconfig(cluster: KubeCluster, token: str, namespace: str, path: Path) -> Path:
    """A kubeconfig whose user gets its token from an exec credential plugin."""
    plugin = path.parent / "credential"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": token}}
    plugin.write_text(f"#!/bin/sh\ncat <<'END'\n{json.dumps(credential)}\nEND\n")
    plugin.chmod(0o755)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": cluster.server,
                                               "certificate-authority": str(cluster.ca_file)}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
            "interactiveMode": "Never"}}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": namespace}}],
        "current-context": "c"}))
    return path


def grant_editor(cluster: KubeCluster, store: Path, namespace: str) -> str:
    """The shipped ClusterRoles applied; a ServiceAccount bound to meshcfg-editor in
    `namespace`, with the shipped mesh reader Role moved there (it is the mesh namespace)."""
    docs = [d for p in sorted((store / "manifests" / "rbac").glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Role":
            doc["metadata"]["namespace"] = namespace
    subject = {"kind": "ServiceAccount", "name": "krew-user", "namespace": namespace}
    for kind, role in (("ClusterRole", "meshcfg-editor"), ("Role", "meshcfg-mesh-reader")):
        docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": {"name": f"krew-user-{role}", "namespace": namespace},
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
                     "subjects": [subject]})
    cluster.kubectl("apply", "-f", "-", input="---\n".join(yaml.safe_dump(d) for d in docs))
    token: str = cluster.service_account_token(namespace, "krew-user")
    return token


@pytest.mark.cluster
def test_krew_install_then_kubectl_runs_the_plugin(krew_bin: Path, krew_root: Path, release: Release,
                                                   kube_cluster: KubeCluster, test_namespace: str,
                                                   tmp_path: Path) -> None:
    r = krew(krew_bin, krew_root, "install", f"--manifest={release.manifest}",
             f"--archive={release.archive}")
    assert r.returncode == 0, r.stderr
    assert "Installed plugin: meshcfg" in r.stderr and "Caveats:" in r.stderr
    store = krew_root / "store" / "meshcfg" / VERSION
    link = krew_root / "bin" / "kubectl-meshcfg"
    assert link.resolve() == (store / "kubectl-meshcfg").resolve()
    assert (krew_root / "receipts" / "meshcfg.yaml").exists()
    assert (store / "LICENSE").exists()      # krew-index requires a license in the install

    kubectl_dir = tmp_path / "kubectl-bin"
    kubectl_dir.mkdir()
    (kubectl_dir / "kubectl").symlink_to(kube_cluster.kubectl_bin)
    env = {"PATH": f"{krew_root / 'bin'}:{kubectl_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
           "KREW_ROOT": str(krew_root), "KUBECONFIG": str(kube_cluster.kubeconfig)}

    def sh(command: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=120,
                              env={**env, **extra})

    listed = sh("kubectl plugin list")
    assert listed.returncode == 0, listed.stderr
    assert str(link) in listed.stdout

    caveats = [line.strip() for line in manifest(release.manifest)["spec"]["caveats"].splitlines()]
    (link_line,) = [line for line in caveats if line.startswith("ln -s")]
    assert sh(link_line).returncode == 0
    completed = sh("kubectl __complete meshcfg get -o y")
    assert completed.stdout.splitlines() == ["yaml", ":4"], completed.stderr

    # The caveat's CRD command, run as a user would paste it.
    (crd_line,) = [line for line in caveats if line.startswith("kubectl apply")]
    applied = sh(crd_line)
    assert applied.returncode == 0, applied.stderr
    assert "sidecarproxyconfigs.meshcfg.io" in applied.stdout
    kube_cluster.wait_crd_established("sidecarproxyconfigs.meshcfg.io")

    config = exec_kubeconfig(kube_cluster, grant_editor(kube_cluster, store, test_namespace),
                             test_namespace, tmp_path / "exec.kubeconfig")
    spc = tmp_path / "spc.yaml"
    spc.write_text(yaml.safe_dump({"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
                                   "metadata": {"name": "via-krew", "namespace": test_namespace},
                                   "spec": {"proxy": {"concurrency": 2}}}))
    as_user = {"KUBECONFIG": str(config)}
    mesh = f"--istio-namespace={test_namespace}"
    applied = sh(f"kubectl meshcfg apply -f {spc}", **as_user)
    assert applied.returncode == 0, applied.stderr
    got = sh(f"kubectl meshcfg get {mesh} -o name", **as_user)
    # (a namespace-bound user sees a warning that pods elsewhere are not counted)
    assert (got.returncode, got.stdout) == (0, "sidecarproxyconfig.meshcfg.io/via-krew\n"), got.stderr
    forbidden = sh(f"kubectl meshcfg get {mesh} -n default", **as_user)
    assert forbidden.returncode == 1
    assert f"system:serviceaccount:{test_namespace}:krew-user" in forbidden.stderr

    # uninstall insists that an index was cloned (it reads nothing from it): an empty local
    # repository stands for the default index, which would need the network.
    subprocess.run(["git", "init", "-q", str(krew_root / "index" / "default")], check=True)
    removed = krew(krew_bin, krew_root, "uninstall", "meshcfg")
    assert removed.returncode == 0, removed.stderr
    assert not link.exists() and not store.exists()
    assert sh("kubectl meshcfg --version").returncode != 0
