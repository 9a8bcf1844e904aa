"""get: SidecarProxyConfigs with their scope, selector, fields, matched pods, conflicts."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.listing import config_rows, select_configs
from ..core.model import SidecarProxyConfig
from .scope import Scope, load, make_resolver, query_namespace


@dataclass(frozen=True)
class Listed:
    configs: list[SidecarProxyConfig]
    rows: list[list[str]]          # table rows (header first) for -o table|wide, else []


def get(scope: Scope, names: tuple[str, ...], selector: str | None, fmt: str,
        show_labels: bool = False) -> Listed:
    inventory = load(scope)
    configs = select_configs(inventory, query_namespace(scope), names, selector)
    rows: list[list[str]] = []
    if fmt in ("table", "wide") and configs:
        rows = config_rows(inventory, configs, make_resolver(inventory, scope, None),
                           wide=fmt == "wide", with_namespace=scope.all_namespaces,
                           show_labels=show_labels)
    return Listed(configs, rows)
