"""Helpers and fixtures for the live-command tests (the conftests of tests/cluster and
tests/habits register the fixtures).

* ``crd`` (session): the project's CRD from ``manifests/crds/`` applied and Established.
* ``mesh_ns`` (function): a second fresh namespace used as the Istio (and mesh root)
  namespace of one test, so that no test sees another test's global objects; commands get
  ``--istio-namespace=<mesh_ns>`` from ``Meshcfg``.
* ``meshcfg`` (function): runs ``kubectl meshcfg`` in-process (click's CliRunner) against
  the test cluster with ``KUBECONFIG`` set; returns ``Run(code, out, err)``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from clusterlib import KubeCluster

from kubectl_meshcfg.cli import cli
from kubectl_meshcfg.core import admission

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "manifests" / "crds"
RBAC_DIR = ROOT / "manifests" / "rbac"
# Commands that accept --istio-namespace (apply and delete do not read the mesh config).
MESH_COMMANDS = {"explain", "lint", "get", "diff"}


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Meshcfg:
    cluster: KubeCluster
    mesh_ns: str
    kubeconfig: Path | None = None

    def __call__(self, *args: str, input: str | None = None,
                 env: dict[str, str] | None = None, mesh: bool = True) -> Run:
        argv = list(args)
        if mesh and argv and argv[0] in MESH_COMMANDS:
            argv.insert(1, f"--istio-namespace={self.mesh_ns}")
        environment = {"KUBECONFIG": str(self.kubeconfig or self.cluster.kubeconfig),
                       "MESHCFG_TRACE_API": ""}
        environment.update(env or {})
        result = CliRunner().invoke(cli, argv, input=input, env=environment)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def crd(kube_cluster: KubeCluster) -> None:
    kube_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kube_cluster.wait_crd_established("sidecarproxyconfigs.meshcfg.io")


@pytest.fixture
def mesh_ns(kube_cluster: KubeCluster) -> Iterator[str]:
    name = kube_cluster.create_namespace("mesh")
    yield name
    kube_cluster.delete_namespace(name)


@pytest.fixture
def meshcfg(kube_cluster: KubeCluster, mesh_ns: str, crd: None) -> Meshcfg:
    return Meshcfg(kube_cluster, mesh_ns)


def spc(name: str, namespace: str, spec: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
            "metadata": meta, "spec": spec or {}}


def pod(name: str, namespace: str, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": spec}


def deployment(name: str, namespace: str, labels: dict[str, str], replicas: int = 2,
               annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels,
                                               "annotations": annotations or {}},
                                  "spec": {"containers": [{"name": "app",
                                                           "image": "registry.invalid/a:1"}]}}}}


def mesh_configmap(namespace: str, default_config: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": namespace},
            "data": {"mesh": yaml.safe_dump({"defaultConfig": default_config})}}


def write(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs))
    return path


def kubectl_apply(cluster: KubeCluster, *docs: dict[str, Any], **kwargs: str) -> None:
    text = "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in kwargs.items()]
    cluster.kubectl("apply", *extra, "-f", "-", input=text)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def wait_for_admission_policy(cluster: KubeCluster, namespace: str) -> None:
    """The API server picks a new MutatingAdmissionPolicy and its params up asynchronously:
    wait until a server dry run of a pod in `namespace` comes back mutated."""
    from clusterlib import poll  # noqa: PLC0415

    probe = yaml.safe_dump(pod("admission-probe", namespace))

    def mutated() -> bool:
        proc = cluster.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-",
                               input=probe, check=False)
        return proc.returncode == 0 and "meshcfg.io/config-hash" in json.loads(
            proc.stdout)["metadata"].get("annotations", {})
    poll(mutated, timeout=60, what="the admission policy to take effect")


def remove_admission_policy(cluster: KubeCluster) -> None:
    """The policy and its binding are cluster-wide: a test that installs them removes them,
    so that other tests' lint does not see them."""
    for doc in admission.static_objects()[1:]:
        cluster.kubectl("delete", "--ignore-not-found", "--wait=true",
                        f"{doc['kind'].lower()}.admissionregistration.k8s.io",
                        doc["metadata"]["name"])
