"""Writes: server-side apply of SidecarProxyConfigs and of rendered workload templates,
deletes, and kubectl's rollout restart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..core import kinds
from . import resources
from .resources import Call
from .transport import Api

APPLY_PATCH = "application/apply-patch+yaml"     # JSON is YAML
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_SERVER_SET = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation",
               "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")


def apply_body(doc: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The apply patch for a document: its namespace set, server-set metadata dropped (so the
    output of `get -o yaml` can be applied back), status dropped."""
    body = {k: v for k, v in doc.items() if k != "status"}
    meta = {k: v for k, v in (doc.get("metadata") or {}).items() if k not in _SERVER_SET}
    meta["namespace"] = namespace
    body["metadata"] = meta
    return body


def _apply_query(field_manager: str, force: bool, dry_run: bool) -> dict[str, str]:
    query = {"fieldManager": field_manager}
    if force:
        query["force"] = "true"
    if dry_run:
        query["dryRun"] = "All"
    return query


def server_side_apply(api: Api, doc: Mapping[str, Any], namespace: str, name: str,
                      field_manager: str, force: bool, dry_run: bool) -> dict[str, Any]:
    """Server-side apply one SidecarProxyConfig."""
    resource = resources.SIDECAR_CONFIGS
    call = Call("patch", resource, namespace, name)
    body = json.dumps(apply_body(doc, namespace)).encode()
    result = api.request("PATCH", call, resource.path(namespace, name),
                         _apply_query(field_manager, force, dry_run), body, APPLY_PATCH)
    return dict(result)


def apply_workload(api: Api, kind: str, namespace: str, name: str, apply_config: Mapping[str, Any],
                   field_manager: str, force: bool, dry_run: bool) -> dict[str, Any]:
    """Server-side apply a rendered apply configuration to a workload."""
    resource = resources.TARGET_RESOURCES[kind]
    call = Call("patch", resource, namespace, name)
    result = api.request("PATCH", call, resource.path(namespace, name),
                         _apply_query(field_manager, force, dry_run),
                         json.dumps(apply_config).encode(), APPLY_PATCH)
    return dict(result)


def restart_workload(api: Api, kind: str, namespace: str, name: str) -> None:
    """What `kubectl rollout restart` does: stamp the template so the controller rolls it."""
    resource = resources.TARGET_RESOURCES[kind]
    stamp = {"metadata": {"annotations": {RESTARTED_AT: datetime.now(UTC).isoformat()}}}
    patch = kinds.BY_NAME[kind].wrap_template(stamp)
    call = Call("patch", resource, namespace, name)
    api.request("PATCH", call, resource.path(namespace, name),
                {"fieldManager": "kubectl-rollout"}, json.dumps(patch).encode(),
                "application/strategic-merge-patch+json")


def delete_config(api: Api, namespace: str, name: str, dry_run: bool,
                  missing_ok: bool = False) -> bool:
    """DELETE one SidecarProxyConfig; False when it was not there and missing_ok."""
    query = {"dryRun": "All"} if dry_run else None
    resource = resources.SIDECAR_CONFIGS
    call = Call("delete", resource, namespace, name)
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                               "propagationPolicy": "Background"}
    if dry_run:   # a DELETE body's options replace the query's: say it in both
        options["dryRun"] = ["All"]
    body = json.dumps(options).encode()
    result = api.request("DELETE", call, resource.path(namespace, name), query, body,
                         "application/json", missing_ok=missing_ok)
    return result is not None
