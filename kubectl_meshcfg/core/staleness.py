"""Is a running pod's sidecar what its effective config says? Reads what Istio's injector
froze into the pod (istio-proxy resources, args and PROXY_CONFIG; istio-init resources and
capture args) and compares it with the resolved values. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from . import fields, formats, hold, kubeyaml

ISTIO_INBOUND_EXCLUSIONS = {"15090", "15021", "15020"}   # the template always adds these
_INBOUND_EXCLUDE_FLAG = "-d"


def running_values(pod_spec: Mapping[str, Any], annotations: Mapping[str, str] | None = None
                   ) -> dict[str, Any] | None:
    """Leaf values the injected sidecar runs with, or None when the pod has no istio-proxy.
    Each leaf is read the way the registry says (`fields.Istio.injected`); the pod's
    `proxy.istio.io/config` is applied over PROXY_CONFIG as pilot-agent does at start-up
    (pilot/cmd/pilot-agent/config/config.go getMeshConfig), except proxyMetadata, which
    the proxy's environment fixed at injection."""
    proxy = _container(pod_spec, fields.CONTAINERS["proxy"])
    if proxy is None:
        return None
    containers = {name: _container(pod_spec, name) for name in fields.CONTAINERS.values()}
    config = _proxy_config(proxy)
    config.update({k: v for k, v in _annotation_config(annotations).items()
                   if k != "proxyMetadata" and v is not None})
    values: dict[str, Any] = {}
    for leaf in fields.LEAVES:
        how = leaf.istio.injected
        if how:
            found = _READERS[how[0]](containers, config, leaf, how)
            if found is not None:
                values[leaf.path] = found
    metadata = config.get("proxyMetadata") or {}
    for key, value in metadata.items():
        if key not in fields.PROXY_CONFIG_METADATA_LEAVES:
            values[fields.METADATA_PREFIX + key] = value
    _read_hold(pod_spec, values)
    return values


def _read_hold(pod_spec: Mapping[str, Any], values: dict[str, Any]) -> None:
    """Whether the application waits for the proxy is where the injector put istio-proxy
    (first when it holds, last otherwise: webhook.go reorderPod), which also counts the
    injector values' switch that PROXY_CONFIG does not show (core/hold.py). A native
    sidecar ignores the setting."""
    if _container(pod_spec, fields.CONTAINERS["proxy"]) not in (pod_spec.get("containers") or []):
        values.pop(hold.LEAF, None)
        return
    names = [c.get("name") for c in pod_spec.get("containers") or [] if isinstance(c, dict)]
    if len(names) > 1:
        values[hold.LEAF] = names[0] == fields.CONTAINERS["proxy"]


Containers = Mapping[str, Mapping[str, Any] | None]


def _container(pod_spec: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for key in ("containers", "initContainers"):
        for container in pod_spec.get(key) or []:
            if isinstance(container, dict) and container.get("name") == name:
                return container
    return None


def _read_resources(containers: Containers, config: Mapping[str, Any], leaf: fields.Leaf,
                    how: tuple[str, ...]) -> Any:
    _, name, group, res = how
    container = containers.get(name)
    if container is None:
        return None
    value = ((container.get("resources") or {}).get(group) or {}).get(res)
    return None if value is None else str(value)


def _read_arg(containers: Containers, config: Mapping[str, Any], leaf: fields.Leaf,
              how: tuple[str, ...]) -> Any:
    _, name, flag = how
    container = containers.get(name)
    if container is None:
        return None
    found = _flag([str(a) for a in container.get("args") or []], flag)
    if found is None or leaf.kind not in ("ports", "cidrs"):
        return found
    if flag == _INBOUND_EXCLUDE_FLAG:
        found = ",".join(p for p in formats.split_list(found) if p not in ISTIO_INBOUND_EXCLUSIONS)
    return found.replace(" ", "")


def _read_proxy_config(containers: Containers, config: Mapping[str, Any], leaf: fields.Leaf,
                       how: tuple[str, ...]) -> Any:
    """PROXY_CONFIG leaves out what equals Istio's default: absent means the default."""
    key = how[1]
    if key.startswith("proxyMetadata."):
        raw = (config.get("proxyMetadata") or {}).get(key.split(".", 1)[1])
    else:
        raw = config.get(key)
    if raw is None and isinstance(leaf.default, fields.Derived):
        return _derived(containers, leaf)
    if raw is None:
        return leaf.default
    if leaf.kind == "bool":
        return str(raw).lower() == "true" if isinstance(raw, str) else bool(raw)
    return raw


def _derived(containers: Containers, leaf: fields.Leaf) -> Any:
    """What pilot-agent derives when PROXY_CONFIG leaves the leaf out (concurrency)."""
    proxy = containers.get(fields.CONTAINERS["proxy"]) or {}
    limit = ((proxy.get("resources") or {}).get("limits") or {}).get("cpu")
    return fields.derive_concurrency(None if limit is None else str(limit))


_READERS: dict[str, Callable[[Containers, Mapping[str, Any], fields.Leaf, tuple[str, ...]], Any]] = {
    fields.READ_RESOURCES: _read_resources,
    fields.READ_ARG: _read_arg,
    fields.READ_PROXY_CONFIG: _read_proxy_config,
}


def _flag(args: list[str], flag: str) -> str | None:
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
    return None


def _annotation_config(annotations: Mapping[str, str] | None) -> Mapping[str, Any]:
    text = (annotations or {}).get(fields.PROXY_CONFIG_ANNOTATION)
    if not text:
        return {}
    try:
        parsed = kubeyaml.load(text)
    except yaml.YAMLError:
        return {}    # pilot-agent refuses to start; the pod is not running this config
    return parsed if isinstance(parsed, dict) else {}


def _proxy_config(proxy: Mapping[str, Any]) -> dict[str, Any]:
    raw = next((e.get("value") for e in proxy.get("env") or []
                if isinstance(e, dict) and e.get("name") == "PROXY_CONFIG"), None)
    try:
        config = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        config = {}
    return config if isinstance(config, dict) else {}


def stale_fields(resolved: Mapping[str, Mapping[str, Any]], running: Mapping[str, Any]
                 ) -> list[tuple[str, Any, Any]]:
    """(leaf, running value, effective value) for every leaf the sidecar runs differently."""
    stale = []
    for leaf, now in running.items():
        field = resolved.get(leaf)
        wanted = field["value"] if field is not None else None
        if wanted is None and leaf.startswith(fields.METADATA_PREFIX):
            continue   # Istio adds metadata of its own
        if not _equal(leaf, now, wanted):
            stale.append((leaf, now, wanted))
    return stale


def _equal(leaf: str, running: Any, wanted: Any) -> bool:
    kind = fields.leaf_for(leaf).kind
    if wanted is None:
        return False
    if kind == "quantity":
        return formats.parse_quantity(str(running)) == formats.parse_quantity(str(wanted))
    if kind == "duration":
        return _seconds(running) == _seconds(wanted)
    if kind in ("ports", "cidrs"):
        return sorted(formats.split_list(str(running))) == sorted(formats.split_list(str(wanted)))
    return bool(running == wanted)


def _seconds(value: Any) -> float | None:
    return formats.parse_duration(str(value)) if value is not None else None
