"""Istio's ProxyConfig objects from the cluster (networking.istio.io/v1beta1).

A cluster without Istio's CRD (404 on the collection) has none; a namespace the user may
not list them in (403) is a warning, and explain resolves without them there. Objects that
do not validate are skipped with a warning, like SidecarProxyConfigs (`reads.py`).
"""

from __future__ import annotations

from typing import Any

from ..core import proxyconfigs as pcs
from ..core.kinds import Resource
from .errors import Forbidden, ObjectNotFound
from .reads import parse_or_warn, warn
from .transport import Api

PROXY_CONFIGS = Resource(pcs.KIND, pcs.GROUP, pcs.SERVED_VERSIONS[0], "proxyconfigs")


def list_proxy_configs(api: Api, namespaces: list[str] | None, root_namespace: str
                       ) -> list[pcs.IstioProxyConfig]:
    """The ProxyConfigs of these namespaces and the root namespace (None: cluster-wide)."""
    wanted: list[str | None] = [None] if namespaces is None else \
        list(dict.fromkeys([*namespaces, root_namespace]))
    found: list[pcs.IstioProxyConfig] = []
    for namespace in wanted:
        try:
            docs = api.list(PROXY_CONFIGS, namespace)
        except ObjectNotFound:
            return []          # no ProxyConfig CRD: Istio has none either
        except Forbidden:
            where = f"in namespace {namespace}" if namespace else "cluster-wide"
            warn(f"cannot list proxyconfigs.networking.istio.io {where}: explain resolves without "
                 "Istio's ProxyConfig objects there (meshcfg-readonly grants it: "
                 "manifests/rbac/meshcfg-readonly.yaml)")
            continue
        found += [c for c in (_parse(doc) for doc in docs) if c is not None]
    return found


def _parse(doc: dict[str, Any]) -> pcs.IstioProxyConfig | None:
    result: pcs.IstioProxyConfig | None = parse_or_warn(pcs.parse, {
        **doc, "kind": PROXY_CONFIGS.kind, "apiVersion": PROXY_CONFIGS.api_version})
    return result
