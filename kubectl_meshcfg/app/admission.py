"""admission render / apply / diff: the objects that make SidecarProxyConfigs take effect
when pods are admitted (docs/gitops.md)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..core import admission
from ..core import render as rendering
from ..core.inventory import Inventory
from ..kube import admission as kube_admission
from .scope import Scope, load, load_live, make_resolver

_SERVER_SET = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


@dataclass(frozen=True)
class AdmissionOptions:
    precedence: str | None = None
    agent_image: str | None = None
    static_only: bool = False      # only the CRD, the policy and its bindings


def objects(scope: Scope, options: AdmissionOptions) -> list[dict[str, Any]]:
    """The static objects, then one params object per namespace, sorted by name."""
    docs = admission.static_objects()
    if options.static_only:
        return docs
    inventory, namespaces = _inventory(scope)
    resolver = make_resolver(inventory, scope, options.precedence)
    image = options.agent_image or rendering.DEFAULT_AGENT_IMAGE
    return docs + [admission.params_for(resolver, ns, image) for ns in namespaces]


def _inventory(scope: Scope) -> tuple[Inventory, list[str]]:
    """Locally: every namespace the files mention (and -n). Live: every namespace, or -n."""
    if scope.local:
        inventory = load(scope)
        found = {t.namespace for t in inventory.targets} | {c.namespace for c in inventory.configs}
        if scope.namespace:
            found.add(scope.namespace)
        return inventory, sorted(found)
    if scope.namespace and not scope.all_namespaces:
        wanted = [scope.namespace]
    else:
        wanted = kube_admission.namespace_names(scope.api)
    return load_live(scope, namespaces=set(wanted)), wanted


@dataclass
class Applied:
    doc: dict[str, Any]
    result: dict[str, Any]


def apply(scope: Scope, options: AdmissionOptions, dry_run: str, force: bool) -> list[Applied]:
    """Server-side apply every object; a server dry run of all of them first, so that a
    rejected object leaves nothing half-applied."""
    docs = objects(scope, options)
    if dry_run == "client":
        return [Applied(doc, doc) for doc in docs]
    manager = admission.FIELD_MANAGER
    crd_missing = kube_admission.get_object(scope.api, docs[0]) is None
    checked = [Applied(doc, doc if crd_missing and doc["kind"] == admission.PARAMS_KIND else
                       kube_admission.apply_object(scope.api, doc, manager, force, True))
               for doc in docs]
    if dry_run == "server":
        return checked
    return [Applied(doc, kube_admission.apply_object(scope.api, doc, manager, force, False))
            for doc in docs]


@dataclass
class ObjectDiff:
    name: str
    text: str = ""
    changed: bool = field(default=False)


def diff(scope: Scope, options: AdmissionOptions) -> list[ObjectDiff]:
    """Per object, a unified diff of the live object against what apply would leave
    (the server's dry-run result, so defaults do not show as changes)."""
    result = []
    for applied in apply(scope, options, "server", False):
        live = kube_admission.get_object(scope.api, applied.doc)
        before = _text(live) if live is not None else ""
        after = _text(applied.result)
        name = describe(applied.doc)
        lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                     f"live/{name}", f"merged/{name}")
        text = "".join(lines)
        result.append(ObjectDiff(name, text, bool(text)))
    return result


def describe(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    prefix = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{doc['kind']}/{prefix}{meta['name']}"


def _text(doc: dict[str, Any]) -> str:
    meta = {k: v for k, v in doc.get("metadata", {}).items() if k not in _SERVER_SET}
    body = {k: v for k, v in doc.items() if k != "status"} | {"metadata": meta}
    return str(yaml.safe_dump(body, sort_keys=True, default_flow_style=False))
