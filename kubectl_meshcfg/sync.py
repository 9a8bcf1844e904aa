"""sync: render every workload in scope and server-side apply those whose rendered config
differs, each with meshcfg's own field manager, so that stock Istio injects it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import render as rendering
from .errors import MeshcfgError
from .formats import parse_quantity
from .inventory import Inventory, top_level
from .model import Target
from .resolve import Resolver

SYNC_FIELD_MANAGER = "kubectl-meshcfg-sync"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SYNCABLE = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "CronJob")
WHY_NOT: dict[str, str] = {
    "Pod": "a bare pod's sidecar cannot change in place; recreate it from its rendered manifest "
           "(kubectl meshcfg render pod/NAME --merge)",
    "Job": "a Job's pod template is immutable; its next run picks the config up from its CronJob "
           "or manifest",
}


@dataclass
class Planned:
    target: Target
    rendered: rendering.Rendered
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)   # (path, before, after)

    current_hash: str | None = None

    @property
    def changed(self) -> bool:
        """The config hash is the record of what sync last wrote; the API server rewrites
        quantities (2000m -> 2), so the template itself cannot tell."""
        return self.current_hash != self.rendered.config_hash


def plan(inventory: Inventory, resolver: Resolver, agent_image: str
         ) -> tuple[list[Planned], list[tuple[Target, str]]]:
    """What sync would write for each workload in the inventory, and what it must skip."""
    planned, skipped = [], []
    for target in sorted(top_level(inventory.targets), key=lambda t: (t.namespace, t.kind, t.name)):
        if target.kind not in SYNCABLE:
            skipped.append((target, WHY_NOT.get(target.kind, "not a workload sync can change")))
            continue
        rendered = rendering.render(target, resolver.resolve(target), agent_image)
        after = rendering.merge_apply(target.raw, rendered.apply_config)
        planned.append(Planned(target, rendered, template_changes(target.raw, after),
                               target.annotations.get(rendering.CONFIG_HASH)))
    return planned, skipped


def template_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Leaf differences between two objects' pod templates, by dotted path."""
    old, new = _flatten(_template(before)), _flatten(_template(after))
    return [(path, old.get(path), new.get(path)) for path in sorted(set(old) | set(new))
            if not _same(path, old.get(path), new.get(path))]


def _same(path: str, before: Any, after: Any) -> bool:
    if ".resources." in path and isinstance(before, str | int) and isinstance(after, str | int):
        return parse_quantity(str(before)) == parse_quantity(str(after))
    return bool(before == after)


def _template(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return spec.get("template") or {}


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


@dataclass
class Outcome:
    planned: Planned
    error: str | None = None


def execute(api: Any, planned: Iterable[Planned], force: bool, dry_run: str,
            restart: bool) -> list[Outcome]:
    """Apply each changed workload; a failure (a conflict, say) is reported and the others
    still go ahead."""
    from . import kube  # noqa: PLC0415 (talks to the API)

    outcomes = []
    for item in planned:
        if not item.changed:
            continue
        try:
            if dry_run != "client":
                _apply(api, kube, item, force, dry_run == "server")
                if restart and dry_run == "none":
                    _restart(api, kube, item.target)
            outcomes.append(Outcome(item))
        except MeshcfgError as error:
            outcomes.append(Outcome(item, str(error)))
    return outcomes


def _apply(api: Any, kube: Any, item: Planned, force: bool, dry_run: bool) -> None:
    target = item.target
    resource = kube.TARGET_RESOURCES[target.kind]
    query = {"fieldManager": SYNC_FIELD_MANAGER}
    if force:
        query["force"] = "true"
    if dry_run:
        query["dryRun"] = "All"
    call = kube.Call("patch", resource, target.namespace, target.name)
    body = json.dumps(item.rendered.apply_config).encode()
    api.request("PATCH", call, resource.path(target.namespace, target.name), query, body,
                "application/apply-patch+yaml")


def _restart(api: Any, kube: Any, target: Target) -> None:
    """What `kubectl rollout restart` does: stamp the template so the controller rolls it."""
    resource = kube.TARGET_RESOURCES[target.kind]
    stamp = {"metadata": {"annotations": {RESTARTED_AT: datetime.now(UTC).isoformat()}}}
    patch = {"spec": {"jobTemplate": {"spec": {"template": stamp}}}} \
        if target.kind == "CronJob" else {"spec": {"template": stamp}}
    call = kube.Call("patch", resource, target.namespace, target.name)
    api.request("PATCH", call, resource.path(target.namespace, target.name),
                {"fieldManager": "kubectl-rollout"}, json.dumps(patch).encode(),
                "application/strategic-merge-patch+json")


def describe(target: Target) -> str:
    group = {"Pod": "", "Job": ".batch", "CronJob": ".batch"}.get(target.kind, ".apps")
    return f"{target.kind.lower()}{group}/{target.name} ({target.namespace})"


def short(value: Any) -> str:
    if value is None:
        return "<unset>"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = text.replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."
