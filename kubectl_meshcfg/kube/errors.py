"""API failures, typed by HTTP status; each keeps the status and the server's Status
payload and reads as one line naming verb, resource, namespace and object (exit 1)."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from typing import Any

from ..core import model
from ..core.errors import MeshcfgError, NotFound
from .kubeconfig import ClusterAccess
from .resources import Call

CRD_NAME = f"sidecarproxyconfigs.{model.API_GROUP}"
CRD_HINT = "install it with: kubectl apply -f manifests/crds/"


class ApiError(MeshcfgError):
    """The Kubernetes API refused or could not be reached; the message is one line."""

    def __init__(self, message: str, status: int | None = None,
                 payload: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.payload: Mapping[str, Any] = payload or {}


class Unreachable(ApiError):
    """No connection to the API server (refused, timed out, TLS failure)."""


class Unauthorized(ApiError):
    """401: the credentials were rejected."""


class Forbidden(ApiError):
    """403: RBAC denied the verb on the resource in the namespace."""


class ObjectNotFound(ApiError, NotFound):
    """404: the object (or its namespace) does not exist."""


class CrdMissing(ApiError):
    """404 on the collection: the SidecarProxyConfig CRD is not installed."""


class ApplyConflict(ApiError):
    """409: server-side apply conflicts with fields owned by another field manager."""


class Invalid(ApiError):
    """422: the API server rejected the object."""


def unreachable(access: ClusterAccess, error: Exception) -> Unreachable:
    reason = error
    while getattr(reason, "reason", None) is not None and reason is not reason.reason:  # type: ignore[attr-defined]
        reason = reason.reason  # type: ignore[attr-defined]
    text = " ".join(str(reason).split())
    if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(reason, ssl.SSLError):
        detail = f"TLS failed ({text}); check the kubeconfig's certificate-authority"
    elif "refused" in text.lower():
        detail = "connection refused"
    elif "timed out" in text.lower() or "timeout" in text.lower():
        detail = "connection timed out"
    else:
        detail = text
    return Unreachable(f"error: cannot reach the Kubernetes API server at {access.server} "
                       f"({access.describe()}): {detail} - is the cluster running and is "
                       "the kubeconfig right?")


_USER_RE = re.compile(r'User "([^"]*)"')


def api_error(status: int, data: bytes, call: Call, access: ClusterAccess) -> ApiError:
    """One line for a failed request, naming what was attempted."""
    body = _status_body(data)
    error = _typed_error(status, data, body, call, access)
    error.status, error.payload = status, body
    return error


def _typed_error(status: int, data: bytes, body: Mapping[str, Any], call: Call,
                 access: ClusterAccess) -> ApiError:
    message = _plain(" ".join(str(body.get("message") or data[:200].decode("utf-8", "replace")).split()))
    if status == 401:
        user = f' as user "{access.user_name}"' if access.user_name else ""
        return Unauthorized(f"error: the API server at {access.server} rejected the credentials "
                            f"of {access.describe()}{user} (401 Unauthorized): the token or "
                            "certificate is invalid or expired")
    if status == 403:
        match = _USER_RE.search(message)
        who = f'User "{match[1]}"' if match else "you"
        return Forbidden(f"error: forbidden: {who} cannot {call.verb} {call.target()} "
                         f"({_rbac_hint(call)})")
    if status == 404:
        details = body.get("details") or {}
        if details.get("kind") == "namespaces" and details.get("name"):
            return ObjectNotFound(f'error: namespace "{details["name"]}" not found')
        if call.resource.kind == model.KIND and not details.get("name"):
            return CrdMissing(f"error: the cluster has no {model.KIND} resource (CRD {CRD_NAME} "
                              f"is not installed): {CRD_HINT}")
        return ObjectNotFound(f"error: {call.target()} not found")
    if status == 409:
        return _conflict(body, call, message)
    if status == 422:
        return Invalid(f"error: the API server rejected {call.resource.singular} "
                        f"{call.namespace}/{call.name}: {_causes(body) or message}")
    return ApiError(f"error: {call.verb} {call.target()} failed: {status} "
                    f"{body.get('reason') or ''}: {message}".replace(" : ", ": "))


def _status_body(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


_ROLLOUT_TEST_ONLY = ("Service", "Event", "EndpointSlice", "Eviction")
_ROLLOUT_TEST_PATCHES = ("Deployment", "StatefulSet", "DaemonSet")
_WORKLOADS = (*_ROLLOUT_TEST_PATCHES, "ReplicaSet", "Job", "CronJob")
_WRITES = ("patch", "create", "update", "delete")


def _rbac_hint(call: Call) -> str:
    verb, resource = call.verb, call.resource
    if (resource.kind in _ROLLOUT_TEST_ONLY or resource.plural == "pods/log"
            or (resource.kind == "Pod" and verb in ("create", "patch", "delete", "watch"))
            or (resource.kind in _ROLLOUT_TEST_PATCHES and verb == "patch")):
        return "meshcfg-rollout-tester grants it: manifests/rbac/meshcfg-rollout-tester.yaml"
    if resource.kind in _WORKLOADS and verb in _WRITES:
        return "no meshcfg role grants writes to workloads: the workload owner's role does"
    if verb in _WRITES:
        return "meshcfg-editor grants it: manifests/rbac/meshcfg-editor.yaml"
    return "meshcfg-readonly grants it: manifests/rbac/meshcfg-readonly.yaml"


_MANAGER_RE = re.compile(r'conflict with "([^"]*)"')


def _conflict(body: Mapping[str, Any], call: Call, message: str) -> ApiError:
    causes = [c for c in ((body.get("details") or {}).get("causes") or [])
              if isinstance(c, dict)]
    by_manager: dict[str, list[str]] = {}
    for cause in causes:
        match = _MANAGER_RE.search(str(cause.get("message", "")))
        manager = match[1] if match else "another field manager"
        by_manager.setdefault(manager, []).append(str(cause.get("field", "?")).lstrip("."))
    if not by_manager:
        return ApplyConflict(f"error: conflict on {call.target()}: {message}")
    owners = "; ".join(f'field manager "{m}" owns {", ".join(f)}' for m, f in by_manager.items())
    return ApplyConflict(f"error: apply conflict on {call.target()}: {owners}; re-run with "
                         "--force-conflicts to take these fields over, or drop them from "
                         "your file")


def _causes(body: Mapping[str, Any]) -> str:
    causes = (body.get("details") or {}).get("causes") or []
    parts = [f"{c.get('field', '')}: {' '.join(str(c.get('message', '')).split())}".lstrip(": ")
             for c in causes if isinstance(c, dict) and _NOT_CHECKED not in str(c.get("message"))]
    return "; ".join(parts)


# the server's note after a schema error, which says nothing about the object
_NOT_CHECKED = "some validation rules were not checked"
# server-side apply's Go value dumps: `&value.valueUnstructured{Value:5}`, `&{true}`
_GO_VALUE = re.compile(r"&(?:value\.valueUnstructured)?\{(?:Value:)?([^{}]*)\}")


def _plain(message: str) -> str:
    return _GO_VALUE.sub(r"\1", message)


