"""What sync would write: each workload's rendered config, and how its pod template would
change. Pure; `app/sync.py` applies the plan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import kinds, trust
from . import render as rendering
from .formats import parse_quantity
from .inventory import Inventory, top_level
from .model import Target
from .resolve import Resolver

Change = tuple[str, Any, Any]          # (path, before, after)


@dataclass
class WorkloadPlan:
    target: Target
    rendered: rendering.Rendered
    changes: list[Change] = field(default_factory=list)
    current_hash: str | None = None
    refused: list[str] = field(default_factory=list)    # core/trust.py: why not to write it

    @property
    def changed(self) -> bool:
        """The config hash is the record of what sync last wrote; the API server rewrites
        quantities (2000m -> 2), so the template itself cannot tell."""
        return self.current_hash != self.rendered.config_hash


def plan(inventory: Inventory, resolver: Resolver, agent_image: str
         ) -> tuple[list[WorkloadPlan], list[tuple[Target, str]]]:
    """What sync would write for each workload in the inventory, and what it must skip."""
    planned, skipped = [], []
    for target in sorted(top_level(inventory.targets), key=lambda t: (t.namespace, t.kind, t.name)):
        kind = kinds.BY_NAME[target.kind]
        if not kind.syncable:
            skipped.append((target, kind.why_not_synced))
            continue
        effective = resolver.resolve(target)
        rendered = rendering.render(target, effective, agent_image)
        after = rendering.merge_apply(target.raw, rendered.apply_config)
        planned.append(WorkloadPlan(target, rendered, template_changes(target.raw, after),
                                    target.annotations.get(rendering.CONFIG_HASH),
                                    trust.untrusted_sources(effective, resolver.root_namespace)))
    return planned, skipped


def template_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Change]:
    """Leaf differences between two objects' pod templates, by dotted path."""
    old, new = _flatten(_template(before)), _flatten(_template(after))
    return [(path, old.get(path), new.get(path)) for path in sorted(set(old) | set(new))
            if not _same(path, old.get(path), new.get(path))]


def _same(path: str, before: Any, after: Any) -> bool:
    if ".resources." in path and isinstance(before, str | int) and isinstance(after, str | int):
        return parse_quantity(str(before)) == parse_quantity(str(after))
    return bool(before == after)


def _template(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    kind = kinds.BY_NAME.get(str(doc.get("kind")))
    return kind.template_of(doc) if kind is not None else {}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(i, Mapping) and "name" in i for i in value):
        out = {}
        for item in value:
            out.update(_flatten({k: v for k, v in item.items() if k != "name"},
                                f"{prefix}[{item['name']}]"))
        return out
    return {prefix: value}
