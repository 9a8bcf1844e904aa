"""Rows of `get`: each SidecarProxyConfig with its scope, selector, fields, pods, conflicts."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from .errors import NotFound
from .inventory import Inventory, competitors, pods_matched, scope_of
from .labels import parse_selector
from .model import SidecarProxyConfig, Target
from .resolve import Resolver


def select_configs(inventory: Inventory, namespace: str | None, name: str | None,
                   selector: str | None) -> list[SidecarProxyConfig]:
    chosen = [c for c in inventory.configs
              if (namespace is None or c.namespace == namespace)
              and (name is None or c.name == name)]
    if selector:
        wanted = parse_selector(selector)
        chosen = [c for c in chosen if wanted.matches(_labels(c))]
    if name is not None and not chosen:
        raise NotFound(f'sidecarproxyconfigs.meshcfg.io "{name}" not found')
    return sorted(chosen, key=lambda c: (c.namespace, c.name))


def _labels(config: SidecarProxyConfig) -> dict[str, str]:
    meta = config.raw.get("metadata") or {}
    return dict(meta.get("labels") or {})


def config_rows(inventory: Inventory, configs: list[SidecarProxyConfig], resolver: Resolver,
                wide: bool, with_namespace: bool) -> list[list[str]]:
    root = resolver.root_namespace
    header = ["NAME", "SCOPE", "SELECTOR", "FIELDS", "PODS", "CONFLICTS", "AGE"]
    if wide:
        header += ["PRECEDENCE", "SET FIELDS"]
    if with_namespace:
        header.insert(0, "NAMESPACE")
    rows = [header]
    # Index by namespace once: only a global object looks beyond its own namespace, and
    # `get -A` on 2,000 configs and 10,000 pods must not compare every pair.
    targets_in: dict[str, list[Target]] = defaultdict(list)
    configs_in: dict[str, list[SidecarProxyConfig]] = defaultdict(list)
    for target in inventory.targets:
        targets_in[target.namespace].append(target)
    for other in inventory.configs:
        configs_in[other.namespace].append(other)
    for config in configs:
        reach = inventory.targets if scope_of(config, root) == "global" else targets_in[config.namespace]
        rivals = competitors(config, configs_in[config.namespace], root)
        row = [config.name, scope_of(config, root), _selector_text(config),
               str(len(config.values)), str(len(pods_matched(config, reach, root))),
               ",".join(rivals) or "<none>", age(config.created)]
        if wide:
            row += [config.precedence or "-", ",".join(config.values) or "<none>"]
        if with_namespace:
            row.insert(0, config.namespace)
        rows.append(row)
    return rows


def _selector_text(config: SidecarProxyConfig) -> str:
    if config.selector is None:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(config.selector.items()))



def age(created: str | None, now: datetime | None = None) -> str:
    """kubectl's short age: 5s, 3m, 2h, 4d, 1y; "<unknown>" without a timestamp."""
    if not created:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
