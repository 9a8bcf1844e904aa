"""Admission objects: server-side apply (own field manager), reads for diff, namespaces."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .resources import Call, Resource
from .transport import Api
from .writes import APPLY_PATCH

NAMESPACES = Resource("Namespace", "", "v1", "namespaces")
_BY_KIND = {
    "CustomResourceDefinition": Resource("CustomResourceDefinition", "apiextensions.k8s.io",
                                         "v1", "customresourcedefinitions"),
    "MutatingAdmissionPolicy": Resource("MutatingAdmissionPolicy", "admissionregistration.k8s.io",
                                        "v1", "mutatingadmissionpolicies"),
    "MutatingAdmissionPolicyBinding": Resource("MutatingAdmissionPolicyBinding",
                                               "admissionregistration.k8s.io", "v1",
                                               "mutatingadmissionpolicybindings"),
}


def resource_of(doc: Mapping[str, Any]) -> Resource:
    kind = doc["kind"]
    if kind in _BY_KIND:
        return _BY_KIND[kind]
    group, version = doc["apiVersion"].split("/")
    return Resource(kind, group, version, kind.lower() + "s")


def _where(doc: Mapping[str, Any]) -> tuple[Resource, str | None, str]:
    meta = doc["metadata"]
    return resource_of(doc), meta.get("namespace"), meta["name"]


def apply_object(api: Api, doc: Mapping[str, Any], field_manager: str, force: bool,
                 dry_run: bool) -> dict[str, Any]:
    resource, namespace, name = _where(doc)
    query = {"fieldManager": field_manager}
    if force:
        query["force"] = "true"
    if dry_run:
        query["dryRun"] = "All"
    result = api.request("PATCH", Call("patch", resource, namespace, name),
                         resource.path(namespace, name), query, json.dumps(doc).encode(),
                         APPLY_PATCH)
    return dict(result)


def get_object(api: Api, doc: Mapping[str, Any]) -> dict[str, Any] | None:
    resource, namespace, name = _where(doc)
    result = api.get(Call("get", resource, namespace, name), missing_ok=True)
    return None if result is None else dict(result)


def namespace_names(api: Api) -> list[str]:
    return sorted(item["metadata"]["name"] for item in api.list(NAMESPACES, None))
