"""Shared fixtures. Cluster fixtures start nothing unless a test requests them.

``kube_cluster`` (session scope) -- a real Kubernetes control plane: etcd, kube-apiserver
(RBAC, ServiceAccount tokens) and kube-controller-manager (namespace, garbage-collector,
serviceaccount, serviceaccount-token, deployment, replicaset controllers). No scheduler and
no kubelet: pods stay Pending, and pods bound with ``spec.nodeName`` are never removed by
a kubelet after a graceful delete (their ``deletionTimestamp`` stays set).

* If ``$KUBECONFIG`` is set and its cluster answers ``/readyz``, that cluster is used
  (flattened into a private kubeconfig) and never stopped.
* Otherwise ``scripts/testcluster up --hold PID`` runs once (building the binaries on the
  first run, which takes tens of minutes; run ``scripts/testcluster build`` beforehand to
  watch it), and ``scripts/testcluster release PID`` at session end: that stops the cluster
  only if a test session started it and no other session still uses it. A cluster started
  by hand (``scripts/testcluster up``) is reused and left running.

The returned ``clusterlib.KubeCluster`` has:

* ``kubeconfig`` (Path, admin), ``server`` (https URL), ``ca_file`` (Path),
  ``kubectl_bin`` (Path of the same-version kubectl), ``env`` (os.environ + KUBECONFIG);
* ``kubectl(*args, input=None, check=True, kubeconfig=None, timeout=120)`` ->
  ``subprocess.CompletedProcess[str]`` (raises AssertionError on failure when check);
* ``get_json(*args)``, ``exists(*args)``;
* ``service_account_token(namespace, name, duration="1h")`` -> bound token (TokenRequest),
  creating the ServiceAccount if missing;
* ``kubeconfig_for_token(token, namespace)`` -> Path of a kubeconfig using only that token;
* ``create_namespace(prefix)`` / ``delete_namespace(name)``.

``test_namespace`` (function scope) -- a fresh uniquely named namespace (its ``default``
ServiceAccount already exists, so pods can be created); deleted afterwards without waiting
(bound pods in it are force-deleted first). Requires ``kube_cluster``.

``kube_node`` (function scope, on top of ``kube_cluster``) -- the real node of
``scripts/testcluster up --node``: containerd + runc + CNI bridge + kubelet, registered as
``meshcfg-node`` (pods set ``spec.nodeName``; there is no scheduler). Started on first
use and then reused (0.3 s); stopped with the cluster. ``kube_node_module`` is the same
for module-scoped fixtures. One node per machine: a session
whose state dir does not own it waits. Returns a ``nodelib.KubeNode`` (images, pod
helpers: see tests/nodelib.py). Needs root.

``clusterlib.poll(condition, timeout, what=...)`` waits for a condition instead of sleeping.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlib import (
    KubeCluster,
    from_env_kubeconfig,
    from_testcluster,
    reachable,
    run_testcluster,
)
from nodelib import KubeNode


def _uncaptured(config: pytest.Config) -> contextlib.AbstractContextManager[object]:
    """Let scripts/testcluster's progress (a cold build takes minutes) reach the terminal."""
    capture = config.pluginmanager.getplugin("capturemanager")
    disabled = getattr(capture, "global_and_fixture_disabled", None)
    return disabled() if disabled else contextlib.nullcontext()


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig: pytest.Config) -> Iterator[KubeCluster]:
    with _uncaptured(pytestconfig):
        kubectl_bin = Path(run_testcluster("bin", "kubectl"))
    env_config = os.environ.get("KUBECONFIG", "")
    if env_config and reachable(env_config, kubectl_bin):
        cluster = from_env_kubeconfig(env_config, kubectl_bin)
        yield cluster
        cluster.close()
        return
    with _uncaptured(pytestconfig):
        kubeconfig = Path(run_testcluster("up", "--hold", str(os.getpid())))
    cluster = from_testcluster(kubeconfig, kubectl_bin)
    try:
        yield cluster
    finally:
        cluster.close()
        run_testcluster("release", str(os.getpid()))


@pytest.fixture
def test_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    name = kube_cluster.create_namespace()
    yield name
    kube_cluster.delete_namespace(name)


def _start_node(cluster: KubeCluster, config: pytest.Config) -> KubeNode:
    with _uncaptured(config):  # the first use builds kubelet, containerd, runc: minutes
        kubeconfig = Path(run_testcluster("up", "--node", "--hold", str(os.getpid())))
    if kubeconfig != cluster.kubeconfig:
        pytest.fail("kube_node needs the cluster of scripts/testcluster (unset KUBECONFIG)")
    info = json.loads((kubeconfig.parent / "node" / "info.json").read_text())
    return KubeNode(cluster, info)


@pytest.fixture
def kube_node(kube_cluster: KubeCluster, pytestconfig: pytest.Config) -> KubeNode:
    return _start_node(kube_cluster, pytestconfig)


@pytest.fixture(scope="module")
def kube_node_module(kube_cluster: KubeCluster, pytestconfig: pytest.Config) -> KubeNode:
    """``kube_node`` for module-scoped fixtures (started once per module)."""
    return _start_node(kube_cluster, pytestconfig)
