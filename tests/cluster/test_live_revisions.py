"""Live revisions before injection (SPEC section 2, Istio's webhook rules): namespace
`istio-injection=enabled` beats `istio.io/rev`, then the namespace's `istio.io/rev`, then the
pod's; a revision tag maps through MutatingWebhookConfiguration `istio-revision-tag-<tag>`.
Each pod below is explained live and its default layer must come from the injector ConfigMap
of the revision that webhook rule picks. Without RBAC for the cluster-scoped reads, explain
warns once per read and falls back to the pod's own label."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from clusterlib import KubeCluster

from .livelib import Meshcfg, kubectl_apply, pod
from .test_live_access import grant, rbac_docs

pytestmark = pytest.mark.cluster

CPU = "init.resources.requests.cpu"
REVISION = "canary"


def injector(namespace: str, name: str, cpu: str) -> dict[str, object]:
    values = {"global": {"proxy": {"resources": {"requests": {"cpu": cpu, "memory": "128Mi"},
                                                 "limits": {"cpu": "2", "memory": "1Gi"}}}}}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"values": json.dumps(values)}}


@dataclass(frozen=True)
class Mesh:
    tag: str
    namespaces: dict[str, str]      # role -> namespace name


@pytest.fixture
def revisioned(kube_cluster: KubeCluster, mesh_ns: str) -> Iterator[Mesh]:
    """Injector ConfigMaps for the default revision (100m) and `canary` (10m), a tag for
    canary, and four namespaces labelled as each webhook rule needs."""
    tag = f"t{uuid.uuid4().hex[:8]}"
    webhook = {"apiVersion": "admissionregistration.k8s.io/v1",
               "kind": "MutatingWebhookConfiguration",
               "metadata": {"name": f"istio-revision-tag-{tag}",
                            "labels": {"istio.io/tag": tag, "istio.io/rev": REVISION}},
               "webhooks": []}
    kubectl_apply(kube_cluster, injector(mesh_ns, "istio-sidecar-injector", "100m"),
                  injector(mesh_ns, f"istio-sidecar-injector-{REVISION}", "10m"), webhook)
    labels = {"rev": ["istio.io/rev=canary"], "tagged": [f"istio.io/rev={tag}"],
              "both": ["istio-injection=enabled", "istio.io/rev=canary"], "plain": []}
    namespaces = {}
    for role, pairs in labels.items():
        namespaces[role] = name = kube_cluster.create_namespace(role)
        if pairs:
            kube_cluster.kubectl("label", "namespace", name, *pairs)
    try:
        yield Mesh(tag, namespaces)
    finally:
        kube_cluster.kubectl("delete", "mutatingwebhookconfiguration",
                             f"istio-revision-tag-{tag}", "--ignore-not-found")
        for name in namespaces.values():
            kube_cluster.delete_namespace(name)


def source_of(run: Meshcfg, name: str, namespace: str) -> tuple[str, str]:
    """(injector ConfigMap of the default layer, stderr) of a live explain."""
    got = run("explain", f"pod/{name}", "-n", namespace, "-o", "json")
    assert got.code == 0, got.err
    return got.json()["fields"][CPU]["source"]["name"], got.err


def test_the_webhook_rules_pick_the_revision(meshcfg: Meshcfg, kube_cluster: KubeCluster,
                                             revisioned: Mesh) -> None:
    ns = revisioned.namespaces
    canary, default = f"istio-sidecar-injector-{REVISION}", "istio-sidecar-injector"
    cases = [  # (namespace role, pod name, pod labels, expected injector)
        ("rev", "a", {}, canary),                                  # namespace istio.io/rev
        ("tagged", "b", {}, canary),                               # namespace label is a tag
        ("both", "c", {"istio.io/rev": REVISION}, default),        # istio-injection beats rev
        ("plain", "d", {"istio.io/rev": revisioned.tag}, canary),  # pod label, through the tag
        ("plain", "e", {}, default),                               # nothing names a revision
        ("rev", "f", {"istio.io/rev": "other"}, canary),           # namespace beats the pod
    ]
    kubectl_apply(kube_cluster, *(pod(name, ns[role], labels) for role, name, labels, _ in cases))
    got = {name: source_of(meshcfg, name, ns[role]) for role, name, _, _ in cases}
    assert {name: source for name, (source, _) in got.items()} == {
        name: expected for _, name, _, expected in cases}
    assert all(err == "" for _, err in got.values())
    # once injected, the pod's own annotation names its revision, whatever the labels say
    injected = pod("g", ns["rev"], annotations={"istio.io/rev": "default"})
    kubectl_apply(kube_cluster, injected)
    assert source_of(meshcfg, "g", ns["rev"])[0] == default


def test_without_cluster_scope_rbac_explain_warns_and_uses_the_pods_label(
        kube_cluster: KubeCluster, mesh_ns: str, revisioned: Mesh) -> None:
    ns = revisioned.namespaces["tagged"]
    kubectl_apply(kube_cluster, pod("a", ns), pod("b", ns, {"istio.io/rev": REVISION}))
    token = grant(kube_cluster, "meshcfg-readonly", ns, mesh_ns, "viewer")
    [role] = [d for d in rbac_docs("meshcfg-readonly", mesh_ns) if d["kind"] == "Role"]
    role["rules"][0]["resourceNames"] += [f"istio-sidecar-injector-{REVISION}",
                                          f"istio-{REVISION}"]    # as its comment says
    kubectl_apply(kube_cluster, role)
    reader = Meshcfg(kube_cluster, mesh_ns, kube_cluster.kubeconfig_for_token(token, ns))

    source, err = source_of(reader, "a", ns)
    assert source == "istio-sidecar-injector"      # the namespace's tag is not visible
    assert err.startswith("warning: cannot read namespace labels (get and list namespaces at "
                          "cluster scope): a pod not injected yet is taken to use the revision "
                          "its own istio.io/rev label names")
    assert err.count("\n") == 1
    source, err = source_of(reader, "b", ns)
    assert source == f"istio-sidecar-injector-{REVISION}"
    assert "cannot list mutatingwebhookconfigurations.admissionregistration.k8s.io" in err
    assert "(meshcfg-revision-reader grants it: manifests/rbac/meshcfg-readonly.yaml)" in err

    kubectl_apply(kube_cluster, *[d for d in rbac_docs("meshcfg-readonly", mesh_ns)
                                  if d["metadata"]["name"] == "meshcfg-revision-reader"])
    binding = f"viewer-revisions-{ns}"
    kube_cluster.kubectl("create", "clusterrolebinding", binding,
                         "--clusterrole=meshcfg-revision-reader",
                         f"--serviceaccount={ns}:viewer")
    try:
        assert source_of(reader, "a", ns) == (f"istio-sidecar-injector-{REVISION}", "")
    finally:
        kube_cluster.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")
