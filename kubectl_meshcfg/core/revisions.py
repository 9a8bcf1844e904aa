"""Which Istio revision injects (or injected) a pod, and the names of a revision's
ConfigMaps (SPEC section 2; Istio's templates/mutatingwebhook.yaml and injection template).

Pure: the namespace labels and revision tags are inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

DEFAULT = "default"
REV_LABEL = "istio.io/rev"                   # namespace/pod label; pod annotation once injected
INJECTION_LABEL = "istio-injection"          # namespace label: enabled = the default revision
STATUS_ANNOTATION = "sidecar.istio.io/status"
TAG_PREFIX = "istio-revision-tag-"           # MutatingWebhookConfiguration of a revision tag
MESH_CONFIGMAP = "istio"
INJECTOR_CONFIGMAP = "istio-sidecar-injector"


def revision_of(annotations: Mapping[str, str], labels: Mapping[str, str],
                namespace_labels: Mapping[str, str], tags: Mapping[str, str]) -> str:
    """The revision of a pod: the one that injected it (annotation `istio.io/rev`, or
    `revision` in `sidecar.istio.io/status`), else the one whose webhook would: namespace
    `istio-injection=enabled` (default revision, beats `istio.io/rev`), else the namespace's
    `istio.io/rev`, else the pod's; a revision tag maps to its revision."""
    injected = injected_revision(annotations)
    if injected:
        return injected
    if namespace_labels.get(INJECTION_LABEL) == "enabled":
        return DEFAULT
    named = namespace_labels.get(REV_LABEL) or labels.get(REV_LABEL)
    if not named:
        return DEFAULT
    return tags.get(named, named)


def injected_revision(annotations: Mapping[str, str]) -> str | None:
    """The revision that injected a pod, None before injection."""
    return annotations.get(REV_LABEL) or _status_revision(annotations.get(STATUS_ANNOTATION))


def names_revision(labels: Mapping[str, str]) -> bool:
    """Do these (namespace or pod) labels name a revision or tag?"""
    return bool(labels.get(REV_LABEL))


def _status_revision(text: str | None) -> str | None:
    if not text:
        return None
    try:
        status = json.loads(text)
    except ValueError:
        return None
    revision = status.get("revision") if isinstance(status, dict) else None
    return str(revision) if revision else None


def configmap_revision(name: str) -> tuple[str, str] | None:
    """("mesh" | "injector", revision) for a ConfigMap of Istio's, else None."""
    for kind, base in (("injector", INJECTOR_CONFIGMAP), ("mesh", MESH_CONFIGMAP)):
        if name == base:
            return kind, DEFAULT
        if name.startswith(base + "-"):
            return kind, name[len(base) + 1:]
    return None


def configmap_name(kind: str, revision: str) -> str:
    base = INJECTOR_CONFIGMAP if kind == "injector" else MESH_CONFIGMAP
    return base if revision == DEFAULT else f"{base}-{revision}"


def tag_of(webhook: Mapping[str, object]) -> tuple[str, str] | None:
    """(tag, revision) of a MutatingWebhookConfiguration `istio-revision-tag-<tag>`."""
    meta = webhook.get("metadata")
    if not isinstance(meta, dict):
        return None
    name = str(meta.get("name") or "")
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    if not name.startswith(TAG_PREFIX) or not labels.get(REV_LABEL):
        return None
    return str(labels.get("istio.io/tag") or name[len(TAG_PREFIX):]), str(labels[REV_LABEL])
