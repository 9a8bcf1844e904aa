"""`diff`: the blast radius of a change, before/after per target and field, with sources.

Pure. The current state (the cluster, or `--base` files) is overlaid with the CHANGE
documents: an object of the same kind, namespace and name is replaced (keeping its
creation time, as server-side apply does, so conflict order is unchanged); a new one
counts as created now, after every existing object. Both states are resolved and compared
leaf by leaf: a field changes when its value or its source changes. Warnings that appear
or disappear (a new object that loses a conflict changes no field but adds a warning) are
changes too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from . import fields
from .effective import Effective, Field
from .inventory import Inventory, top_level
from .model import API_VERSION, Target
from .proxyconfigs import IstioProxyConfig

Key = tuple[str, str, str]          # (namespace, kind, name)


def overlay(base: Inventory, change: Inventory) -> Inventory:
    configs = {(c.namespace, c.name): c for c in base.configs}
    order = max((c.load_order for c in base.configs), default=-1) + 1
    for config in change.configs:
        old = configs.get((config.namespace, config.name))
        if old is not None:
            config = dataclasses.replace(config, created=old.created, load_order=old.load_order)
        else:
            config = dataclasses.replace(config, created=None, load_order=order)
            order += 1
        configs[(config.namespace, config.name)] = config
    targets = {_key(t): t for t in base.targets}
    targets.update({_key(t): t for t in change.targets})
    return Inventory(configs=list(configs.values()), targets=list(targets.values()),
                     mesh=change.mesh or base.mesh, injector=change.injector or base.injector,
                     revision_meshes={**base.revision_meshes, **change.revision_meshes},
                     revision_injectors={**base.revision_injectors, **change.revision_injectors},
                     namespace_labels={**base.namespace_labels, **change.namespace_labels},
                     tags={**base.tags, **change.tags},
                     proxy_configs=_overlay_proxy_configs(base, change))


def _overlay_proxy_configs(base: Inventory, change: Inventory) -> list[IstioProxyConfig]:
    """The change's Istio ProxyConfigs replace the base's of the same name; new ones count
    as created after every existing one."""
    found = {(c.namespace, c.name): c for c in base.proxy_configs}
    order = max((c.load_order for c in base.proxy_configs), default=-1) + 1
    for config in change.proxy_configs:
        old = found.get((config.namespace, config.name))
        created, load_order = (old.created, old.load_order) if old else (None, order)
        order += old is None
        found[(config.namespace, config.name)] = dataclasses.replace(
            config, created=created, load_order=load_order)
    return list(found.values())


def _key(target: Target) -> Key:
    return (target.namespace, target.kind, target.name)


def affected_namespaces(change: Inventory, root_namespace: str) -> set[str] | None:
    """Namespaces whose targets the change can touch; None = every namespace (a global
    object or the mesh config changes)."""
    if change.mesh is not None or change.injector is not None or change.revision_meshes \
            or change.revision_injectors or change.tags:
        return None
    if any(c.namespace == root_namespace and c.selector is None for c in change.proxy_configs):
        return None
    found: set[str] = {c.namespace for c in change.proxy_configs}
    for config in change.configs:
        if config.namespace == root_namespace and config.selector is None:
            return None
        found.add(config.namespace)
    found |= {t.namespace for t in change.targets}
    return found


def compare(before: Inventory, after: Inventory,
            resolve_before: Callable[[Target], Effective],
            resolve_after: Callable[[Target], Effective],
            namespaces: set[str] | None) -> dict[str, Any]:
    """The SidecarConfigDiff object: every target whose effective config changes."""
    def chosen(inventory: Inventory) -> dict[Key, Target]:
        return {_key(t): t for t in top_level(inventory.targets)
                if namespaces is None or t.namespace in namespaces}

    old, new = chosen(before), chosen(after)
    items = []
    field_count = 0
    for key in sorted(set(old) | set(new)):
        b = resolve_before(old[key]) if key in old else None
        a = resolve_after(new[key]) if key in new else None
        item = _target_diff(b, a)
        if item is not None:
            items.append(item)
            field_count += len(item["fields"])
    return {"apiVersion": API_VERSION, "kind": "SidecarConfigDiff", "items": items,
            "summary": {"targets": len(set(old) | set(new)), "changed": len(items),
                        "fields": field_count}}


def _target_diff(before: Effective | None, after: Effective | None) -> dict[str, Any] | None:
    either = after or before
    assert either is not None
    old_fields = before["fields"] if before else {}
    new_fields = after["fields"] if after else {}
    changes = []
    for leaf in sorted(set(old_fields) | set(new_fields), key=fields.sort_key):
        b, a = _entry(old_fields.get(leaf)), _entry(new_fields.get(leaf))
        if b != a:
            changes.append({"field": leaf, "before": b, "after": a})
    old_warnings = list(before["warnings"]) if before else []
    new_warnings = list(after["warnings"]) if after else []
    added = [w for w in new_warnings if w not in old_warnings]
    removed = [w for w in old_warnings if w not in new_warnings]
    if not changes and not added and not removed:
        return None
    status = "changed" if before and after else ("added" if after else "removed")
    return {"target": either["target"], "status": status, "fields": changes,
            "warnings": {"added": added, "removed": removed}}


def _entry(field: Field | None) -> dict[str, Any] | None:
    if field is None:
        return None
    return {"value": field["value"], "source": field["source"]}
