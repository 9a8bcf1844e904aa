"""Render and staleness as pure functions, on fixture pairs: `fixtures/<kind>/NAME.in.yaml`
is read as `--local -f` reads it; `NAME.out.yaml` is what must come out. No cluster, no
istioctl. To write the .out.yaml files after an intended change (then review the diff):

    MESHCFG_WRITE_FIXTURES=1 .venv/bin/pytest tests/unit/test_fixture_pairs.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_meshcfg.app.loader import load_inventory
from kubectl_meshcfg.core import render, staleness
from kubectl_meshcfg.core.inventory import top_level
from kubectl_meshcfg.core.resolve import Resolver

FIXTURES = Path(__file__).parent / "fixtures"


def pairs(kind: str) -> list[Path]:
    return sorted((FIXTURES / kind).glob("*.in.yaml"))


def resolved(path: Path) -> tuple[Any, Resolver]:
    inventory = load_inventory([str(path)], False, "default", "istio-system")
    [target] = top_level(inventory.targets)
    return target, Resolver(inventory.configs, inventory.mesh)


def check(path: Path, produced: Any) -> None:
    out = path.with_name(path.name.replace(".in.yaml", ".out.yaml"))
    if os.environ.get("MESHCFG_WRITE_FIXTURES"):
        out.write_text(yaml.safe_dump(produced, sort_keys=False), encoding="utf-8")
    assert produced == yaml.safe_load(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", pairs("render"), ids=lambda p: p.name)
def test_render(path: Path) -> None:
    target, resolver = resolved(path)
    rendered = render.render(target, resolver.resolve(target))
    check(path, {"applyConfiguration": rendered.apply_config, "notes": rendered.notes})


@pytest.mark.parametrize("path", pairs("staleness"), ids=lambda p: p.name)
def test_staleness(path: Path) -> None:
    target, resolver = resolved(path)
    effective = resolver.resolve(target)
    check(path, {"running": staleness.running_values(target.pod_spec),
                 "stale": [w["message"] for w in effective["warnings"]
                           if w["code"] == "StaleSidecar"]})


def test_every_input_has_its_output() -> None:
    for kind in ("render", "staleness"):
        found = pairs(kind)
        assert len(found) >= 3
        for path in found:
            assert path.with_name(path.name.replace(".in.yaml", ".out.yaml")).is_file()
