"""Istio's ProxyConfig objects read from a real API server: the pinned Istio chart's CRD,
objects at every scope, istiod's oldest-wins rule on the server's creationTimestamps, a
reader without access to them (a warning, not a failure) and a cluster without the CRD."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterlib import KubeCluster

from kubectl_meshcfg.kube import proxyconfigs as kube_proxyconfigs
from kubectl_meshcfg.kube.resources import Resource

from .livelib import (  # noqa: F401
    ROOT,
    Meshcfg,
    crd,
    deployment,
    kubectl_apply,
    mesh_ns,
    meshcfg,
    pod,
    spc,
)

CRD_NAME = "proxyconfigs.networking.istio.io"


def pinned_crd() -> dict[str, Any]:
    """The ProxyConfig CRD of the pinned istio.io/istio module's base chart."""
    version = subprocess.run([str(ROOT / "scripts" / "istio-tool"), "istioctl", "--print-version"],
                             check=True, text=True, stdout=subprocess.PIPE).stdout.strip()
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], check=True, text=True,
                              stdout=subprocess.PIPE).stdout.strip()
    path = Path(modcache) / f"istio.io/istio@{version}" / "manifests/charts/base/files/crd-all.gen.yaml"
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["metadata"]["name"] == CRD_NAME:
            return dict(doc)
    raise AssertionError(f"no {CRD_NAME} in {path}")


@pytest.fixture(scope="module")
def istio_crd(kube_cluster: KubeCluster) -> None:
    kubectl_apply(kube_cluster, pinned_crd(), server_side="true", force_conflicts="true")
    kube_cluster.wait_crd_established(CRD_NAME)


def proxy_config(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "ProxyConfig",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def explain(run: Meshcfg, namespace: str, name: str) -> dict[str, Any]:
    result = run("explain", f"pod/{name}", "-n", namespace, "-o", "json")
    assert result.code == 0, result.err
    assert result.err == ""
    found: dict[str, Any] = result.json()
    return found


def test_proxyconfigs_are_sources_live(meshcfg: Meshcfg, kube_cluster: KubeCluster,  # noqa: F811
                                       test_namespace: str, mesh_ns: str,  # noqa: F811
                                       istio_crd: None) -> None:
    ns = test_namespace
    kubectl_apply(kube_cluster,
                  proxy_config("mesh-wide", mesh_ns, {"environmentVariables": {
                      "ISTIO_META_DNS_CAPTURE": "true", "TEAM": "mesh"}}),
                  proxy_config("ns-threads", ns, {"concurrency": 3}),
                  proxy_config("web-threads", ns, {"selector": {"matchLabels": {"app": "web"}},
                                                   "concurrency": 4,
                                                   "environmentVariables": {"TEAM": "web"}}),
                  pod("web", ns, {"app": "web"}, {"proxy.istio.io/config": "concurrency: 2"}),
                  pod("api", ns, {"app": "api"}))

    web = explain(meshcfg, ns, "web")
    fields = web["fields"]
    assert fields["proxy.concurrency"]["value"] == 2
    assert fields["proxy.concurrency"]["source"] == {"layer": "annotation",
                                                     "annotation": "proxy.istio.io/config"}
    assert [(e["value"], e["source"]) for e in fields["proxy.concurrency"]["overridden"][:2]] == [
        (4, {"layer": "istio-workload", "kind": "ProxyConfig", "namespace": ns,
             "name": "web-threads"}),
        (3, {"layer": "istio-namespace", "kind": "ProxyConfig", "namespace": ns,
             "name": "ns-threads"})]
    assert fields["proxy.proxyMetadata.TEAM"]["value"] == "web"
    assert fields["proxy.dnsCapture"]["source"]["name"] == "mesh-wide"
    assert [w["objects"] for w in web["warnings"]
            if w["code"] == "ProxyConfigOverriddenAtRuntime"] == \
        [[f"{ns}/web-threads", "annotation proxy.istio.io/config"]]

    api = explain(meshcfg, ns, "api")["fields"]
    assert (api["proxy.concurrency"]["value"], api["proxy.concurrency"]["source"]["name"]) == \
        (3, "ns-threads")
    assert (api["proxy.proxyMetadata.TEAM"]["value"], api["proxy.dnsCapture"]["value"]) == \
        ("mesh", True)

    # a second namespace-wide object: istiod's rule on the server's timestamps decides
    kubectl_apply(kube_cluster, proxy_config("a-later", ns, {"concurrency": 6}))
    stamps = {item["metadata"]["name"]: item["metadata"]["creationTimestamp"]
              for item in kube_cluster.get_json("proxyconfigs.networking.istio.io", "-n", ns)["items"]
              if "selector" not in item["spec"]}
    winner, loser = sorted(stamps, key=lambda name: (stamps[name], name))
    again = explain(meshcfg, ns, "api")
    assert again["fields"]["proxy.concurrency"]["value"] == {"ns-threads": 3, "a-later": 6}[winner]
    assert [w["objects"] for w in again["warnings"] if w["code"] == "ProxyConfigConflict"] == \
        [[f"{ns}/{winner}", f"{ns}/{loser}"]]


def test_a_reader_without_access_gets_a_warning_not_a_failure(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,  # noqa: F811
        mesh_ns: str, istio_crd: None) -> None:  # noqa: F811
    ns = test_namespace
    kubectl_apply(kube_cluster, proxy_config("ns-threads", ns, {"concurrency": 3}),
                  pod("api", ns, {"app": "api"}))
    rules = [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]},
             {"apiGroups": ["meshcfg.io"], "resources": ["sidecarproxyconfigs"],
              "verbs": ["get", "list"]}]
    token = kube_cluster.service_account_token(ns, "narrow")
    subject = [{"kind": "ServiceAccount", "name": "narrow", "namespace": ns}]
    for where in (ns, mesh_ns):
        kubectl_apply(kube_cluster,
                      {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "narrow", "namespace": where}, "rules": rules},
                      {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": "narrow", "namespace": where},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                   "name": "narrow"}, "subjects": subject})
    narrow = Meshcfg(kube_cluster, mesh_ns, kube_cluster.kubeconfig_for_token(token, ns))
    result = narrow("explain", "pod/api", "-n", ns, "-o", "json")
    assert result.code == 0, result.err
    assert result.json()["fields"]["proxy.concurrency"]["source"]["layer"] == "default"
    warned = [line for line in result.err.splitlines() if "proxyconfigs" in line]
    assert warned == [
        f"warning: cannot list proxyconfigs.networking.istio.io in namespace {where}: explain "
        "resolves without Istio's ProxyConfig objects there (meshcfg-readonly grants it: "
        "manifests/rbac/meshcfg-readonly.yaml)" for where in (ns, mesh_ns)]


def test_a_cluster_without_the_crd_has_none(meshcfg: Meshcfg, kube_cluster: KubeCluster,  # noqa: F811
                                            test_namespace: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The real API server's 404 for a group nothing serves (the shared cluster keeps the
    CRD for the other tests, so the client asks for an absent group)."""
    monkeypatch.setattr(kube_proxyconfigs, "PROXY_CONFIGS",
                        Resource("ProxyConfig", "absent.istio.io", "v1beta1", "proxyconfigs"))
    kubectl_apply(kube_cluster, pod("api", test_namespace, {"app": "api"}))
    result = meshcfg("explain", "pod/api", "-n", test_namespace, "-o", "json")
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.json()["fields"]["proxy.concurrency"]["source"]["layer"] == "default"


def test_sync_leaves_what_proxyconfigs_set_to_istiod(
        meshcfg: Meshcfg, kube_cluster: KubeCluster, test_namespace: str,  # noqa: F811
        mesh_ns: str, istio_crd: None) -> None:  # noqa: F811
    """sync writes meshcfg's concurrency (it must beat the workload ProxyConfig when
    pilot-agent starts) but no copy of what the ProxyConfigs set, and a second sync has
    nothing to do."""
    ns = test_namespace
    kubectl_apply(kube_cluster,
                  proxy_config("dns", ns, {"environmentVariables": {"ISTIO_META_DNS_CAPTURE": "true",
                                                                    "TEAM": "istio"}}),
                  proxy_config("threads", ns, {"selector": {"matchLabels": {"app": "web"}},
                                               "concurrency": 4}),
                  spc("ours", ns, {"proxy": {"concurrency": 2}}),
                  deployment("web", ns, {"app": "web"}))
    first = meshcfg("sync", "-n", ns, f"--istio-namespace={mesh_ns}")
    assert first.code == 0, first.err
    template = kube_cluster.get_json("deployment", "web", "-n", ns)["spec"]["template"]
    written = yaml.safe_load(template["metadata"]["annotations"]["proxy.istio.io/config"])
    assert written["concurrency"] == 2
    assert "ISTIO_META_DNS_CAPTURE" not in written["proxyMetadata"]
    assert "TEAM" not in written["proxyMetadata"]
    again = meshcfg("sync", "-n", ns, f"--istio-namespace={mesh_ns}")
    assert again.out.rstrip().endswith("0 synced, 1 unchanged, 0 failed, 0 skipped"), again.out
    explained = meshcfg("explain", "deploy/web", "-n", ns, "-o", "json").json()
    assert explained["fields"]["proxy.concurrency"]["value"] == 2
    assert "ProxyConfigOverriddenAtRuntime" in [w["code"] for w in explained["warnings"]]
