"""render: the apply configuration of each target (or the whole object, merged)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core import render as rendering
from .explain import TargetOptions, choose_targets
from .scope import Scope


@dataclass
class RenderedTargets:
    bodies: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # "ref (namespace): note"
    named: bool = False


def render(scope: Scope, options: TargetOptions, agent_image: str | None,
           merge: bool) -> RenderedTargets:
    chosen = choose_targets(scope, options)
    result = RenderedTargets(named=chosen.named)
    for one in chosen.targets:
        rendered = rendering.render(one, chosen.resolver.resolve(one),
                                    agent_image or rendering.DEFAULT_AGENT_IMAGE)
        result.notes += [f"{one.ref} ({one.namespace}): {note}" for note in rendered.notes]
        body = rendered.apply_config
        result.bodies.append(rendering.merge_apply(one.raw, body) if merge else body)
    return result
