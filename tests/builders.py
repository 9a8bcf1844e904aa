"""Small builders for tests (and tests/scenariolib.py): SidecarProxyConfig documents, pods,
resolvers, kubeconfig contexts."""

from __future__ import annotations

from typing import Any

from kubectl_meshcfg.core.model import (
    API_VERSION,
    KIND,
    MeshConfig,
    Origin,
    SidecarProxyConfig,
    Target,
    parse_config,
)
from kubectl_meshcfg.core.resolve import Resolver

ROOT = "istio-system"


def config(namespace: str, name: str, spec: dict[str, Any], created: str | None = None,
           order: int = 0) -> SidecarProxyConfig:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created:
        meta["creationTimestamp"] = created
    doc = {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}
    return parse_config(doc, Origin("test.yaml", order + 1), "default", order)


def pod(namespace: str = "ai", name: str = "svc-a-0", labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, grace: int | None = None) -> Target:
    return Target("Pod", namespace, name, labels or {}, annotations or {}, grace_period=grace)


def mesh(default_config: dict[str, Any], root: str = ROOT) -> MeshConfig:
    return MeshConfig(ROOT, "istio", root, default_config)


def resolve(configs: list[SidecarProxyConfig], target: Target, mesh_config: MeshConfig | None = None,
            precedence: str | None = None) -> dict[str, Any]:
    return Resolver(configs, mesh_config, precedence=precedence).resolve(target)


def value(result: dict[str, Any], leaf: str) -> Any:
    return result["fields"][leaf]["value"]


def layer(result: dict[str, Any], leaf: str) -> str:
    return str(result["fields"][leaf]["source"]["layer"])


def codes(result: dict[str, Any]) -> list[str]:
    return [w["code"] for w in result["warnings"]]


def kube_context(name: str, cluster: str, user: str, namespace: str | None = None
                 ) -> dict[str, Any]:
    """A kubeconfig `contexts` entry."""
    body = {"cluster": cluster, "user": user}
    if namespace:
        body["namespace"] = namespace
    return {"name": name, "context": body}
