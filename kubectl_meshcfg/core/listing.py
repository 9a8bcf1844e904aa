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
    """kubectl's AGE column for a creationTimestamp; "<unknown>" without one."""
    if not created:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration(int(((now or datetime.now(UTC)) - then).total_seconds()))


def human_duration(seconds: int) -> str:
    """kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration): two units while the
    second one still says something (`102s`, `5m3s`, `3h20m`, `2d4h`, `2y31d`), one after."""
    if seconds < -1:
        return "<invalid>"      # a clock more than a second ahead of ours
    if seconds < 2 * 60:
        return f"{max(seconds, 0)}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return _two_units(minutes, "m", seconds % 60, "s")
    if minutes < 3 * 60:
        return f"{minutes}m"
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 8 * 24:
        return _two_units(days, "d", hours % 24, "h")
    if days < 2 * 365:
        return f"{days}d"
    if days < 8 * 365:
        return _two_units(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"
