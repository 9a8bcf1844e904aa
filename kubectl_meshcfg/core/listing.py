"""Rows of `get`: each SidecarProxyConfig with its scope, selector, fields, pods, conflicts."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from .errors import NotFound, UsageError
from .inventory import Inventory, competitors, pods_matched, scope_of
from .labels import parse_selector
from .model import API_GROUP, API_VERSION, SidecarProxyConfig, Target
from .resolve import Resolver

# What kubectl accepts as the type of these objects: `get spc`, `get sidecarproxyconfigs.meshcfg.io`.
CONFIG_TYPE_NAMES = frozenset(
    name + suffix for name in ("spc", "sidecarproxyconfig", "sidecarproxyconfigs")
    for suffix in ("", f".{API_GROUP}", f".{API_VERSION.split('/')[1]}.{API_GROUP}"))


def parse_config_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """`get` arguments as kubectl takes them: `spc`, `spc NAME...`, `spc/NAME...`, or bare
    NAMEs → the names asked for (() = all)."""
    if args and args[0].lower() in CONFIG_TYPE_NAMES:
        names = args[1:]
        if any("/" in n for n in names):
            raise UsageError("there is no need to give the type as a separate argument with "
                             "TYPE/NAME arguments")
        return names
    bare: list[str] = []
    for arg in args:
        kind, slash, name = arg.rpartition("/")
        if slash and (kind.lower() not in CONFIG_TYPE_NAMES or not name):
            raise UsageError(f"get lists SidecarProxyConfigs (spc); {arg!r} is not spc/NAME")
        bare.append(name)
    return tuple(bare)


def select_configs(inventory: Inventory, namespace: str | None, names: tuple[str, ...],
                   selector: str | None) -> list[SidecarProxyConfig]:
    chosen = [c for c in inventory.configs
              if (namespace is None or c.namespace == namespace)
              and (not names or c.name in names)]
    if selector:
        wanted = parse_selector(selector)
        chosen = [c for c in chosen if wanted.matches(config_labels(c))]
    missing = [n for n in names if n not in {c.name for c in chosen}]
    if missing:
        raise NotFound(f'sidecarproxyconfigs.meshcfg.io "{missing[0]}" not found')
    order = {name: i for i, name in enumerate(names)}
    return sorted(chosen, key=lambda c: (order.get(c.name, 0), c.namespace, c.name))


def config_labels(config: SidecarProxyConfig) -> dict[str, str]:
    meta = config.raw.get("metadata") or {}
    return dict(meta.get("labels") or {})


def config_rows(inventory: Inventory, configs: list[SidecarProxyConfig], resolver: Resolver,
                wide: bool, with_namespace: bool, show_labels: bool = False) -> list[list[str]]:
    root = resolver.root_namespace
    header = ["NAME", "SCOPE", "SELECTOR", "FIELDS", "PODS", "CONFLICTS", "AGE"]
    if wide:
        header += ["PRECEDENCE", "SET FIELDS"]
    if show_labels:
        header.append("LABELS")
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
        if show_labels:
            labels = config_labels(config)
            row.append(",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
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
