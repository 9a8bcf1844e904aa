"""What decides a pod's revision before injection, read from the cluster: namespace labels
and the revision tags' MutatingWebhookConfigurations (`istio-revision-tag-<tag>`). Both
are cluster-scoped: without RBAC for them (ClusterRole meshcfg-revision-reader) each read
degrades to nothing, with one warning saying what is assumed instead."""

from __future__ import annotations

from collections.abc import Callable

from ..core import revisions
from . import resources
from .errors import Forbidden
from .resources import Call
from .transport import Api

Warn = Callable[[str], None]
GRANT = "meshcfg-revision-reader grants it: manifests/rbac/meshcfg-readonly.yaml"
TAG_LABEL = "istio.io/tag"      # the label istioctl puts on a tag's webhook configuration


def namespace_labels(api: Api, names: list[str], warn: Warn) -> dict[str, dict[str, str]]:
    """The labels of these namespaces (one GET for one namespace, else one LIST)."""
    try:
        if len(names) == 1:
            docs = [api.get(Call("get", resources.NAMESPACES, None, names[0]), missing_ok=True)]
        else:
            docs = api.list(resources.NAMESPACES, None)
    except Forbidden:
        warn("cannot read namespace labels (get and list namespaces at cluster scope): a pod "
             "not injected yet is taken to use the revision its own istio.io/rev label names, "
             f"as if its namespace had no istio-injection or istio.io/rev label ({GRANT})")
        return {}
    found = {}
    for doc in docs:
        meta = (doc or {}).get("metadata") or {}
        if meta.get("name") in names:
            labels = meta.get("labels") or {}
            found[str(meta["name"])] = {str(k): str(v) for k, v in labels.items()}
    return found


def revision_tags(api: Api, warn: Warn) -> dict[str, str]:
    """tag -> revision, from the webhook configurations of the revision tags."""
    try:
        docs = api.list(resources.MUTATING_WEBHOOKS, None, label_selector=TAG_LABEL)
    except Forbidden:
        warn("cannot list mutatingwebhookconfigurations.admissionregistration.k8s.io: an "
             f"istio.io/rev label naming a revision tag is taken as a revision name ({GRANT})")
        return {}
    return dict(tag for doc in docs if (tag := revisions.tag_of(doc)))
