"""The test control plane is a real one: storage, controllers, RBAC, graceful deletion."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from clusterlib import KubeCluster, poll

pytestmark = pytest.mark.cluster


def test_configmap_create_get_delete(kube_cluster: KubeCluster, test_namespace: str) -> None:
    ns = ["-n", test_namespace]
    kube_cluster.kubectl("create", "configmap", "cm", "--from-literal=key=value", *ns)
    assert kube_cluster.get_json("configmap", "cm", *ns)["data"] == {"key": "value"}
    kube_cluster.kubectl("delete", "configmap", "cm", *ns)
    assert not kube_cluster.exists("configmap", "cm", *ns)


def test_deployment_gets_replicaset_and_pods(kube_cluster: KubeCluster,
                                             test_namespace: str) -> None:
    ns = ["-n", test_namespace]
    kube_cluster.kubectl("create", "deployment", "web", "--image=registry.invalid/web:1",
                         "--replicas=2", *ns)

    def pods() -> list[dict[str, object]]:
        items = kube_cluster.get_json("pods", "-l", "app=web", *ns)["items"]
        return items if len(items) == 2 else []

    found = poll(pods, timeout=60, what="2 pods from the deployment")
    owners = {ref["kind"] for pod in found for ref in pod["metadata"]["ownerReferences"]}
    assert owners == {"ReplicaSet"}
    rs = kube_cluster.get_json("replicasets", *ns)["items"]
    assert [r["metadata"]["ownerReferences"][0]["name"] for r in rs] == ["web"]
    # No scheduler and no kubelet: the pods exist but never run.
    assert {pod["status"].get("phase") for pod in found} == {"Pending"}


def test_deleting_a_namespace_finishes(kube_cluster: KubeCluster) -> None:
    name = kube_cluster.create_namespace("gone")
    kube_cluster.kubectl("create", "configmap", "cm", "-n", name)
    kube_cluster.kubectl("delete", "namespace", name, "--wait=false")
    poll(lambda: not kube_cluster.exists("namespace", name), timeout=90,
         what=f"namespace {name} to be deleted")


def _status(cluster: KubeCluster, token: str, method: str, path: str,
            body: dict[str, object] | None = None) -> int:
    request = urllib.request.Request(
        cluster.server + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=str(cluster.ca_file))
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_read_only_service_account_can_get_but_not_create(kube_cluster: KubeCluster,
                                                          test_namespace: str) -> None:
    ns = ["-n", test_namespace]
    kube_cluster.kubectl("create", "configmap", "cm", *ns)
    kube_cluster.kubectl("create", "role", "reader", "--verb=get,list",
                         "--resource=configmaps", *ns)
    kube_cluster.kubectl("create", "rolebinding", "reader", "--role=reader",
                         f"--serviceaccount={test_namespace}:viewer", *ns)
    token = kube_cluster.service_account_token(test_namespace, "viewer")
    config = kube_cluster.kubeconfig_for_token(token, test_namespace)

    path = f"/api/v1/namespaces/{test_namespace}/configmaps"
    poll(lambda: _status(kube_cluster, token, "GET", path + "/cm") == 200, timeout=30,
         what="the RoleBinding to take effect")
    got = kube_cluster.kubectl("get", "configmap", "cm", "-o", "name", kubeconfig=config)
    assert got.stdout.strip() == "configmap/cm"

    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}}
    assert _status(kube_cluster, token, "POST", path, body) == 403
    refused = kube_cluster.kubectl("create", "configmap", "new", kubeconfig=config,
                                   check=False)
    assert refused.returncode == 1
    assert (f'User "system:serviceaccount:{test_namespace}:viewer" cannot create resource '
            f'"configmaps"') in refused.stderr


def test_graceful_delete_of_bound_pod_sets_deletion_timestamp(kube_cluster: KubeCluster,
                                                              test_namespace: str) -> None:
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
        "spec": {"nodeName": "node-1",
                 "containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }
    ns = ["-n", test_namespace]
    kube_cluster.kubectl("create", "-f", "-", *ns, input=json.dumps(pod))
    deleted_at = datetime.now(UTC)
    kube_cluster.kubectl("delete", "pod", "bound", "--grace-period=45", "--wait=false", *ns)

    meta = kube_cluster.get_json("pod", "bound", *ns)["metadata"]
    assert meta["deletionGracePeriodSeconds"] == 45
    deadline = datetime.fromisoformat(meta["deletionTimestamp"].replace("Z", "+00:00"))
    assert abs((deadline - deleted_at).total_seconds() - 45) < 5
