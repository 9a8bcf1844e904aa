"""Is a running pod's sidecar what its effective config says? Reads what Istio's injector
froze into the pod (istio-proxy resources, args and PROXY_CONFIG; istio-init resources and
capture args) and compares it with the resolved values. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import fields, formats

# Values Istio leaves out of PROXY_CONFIG because they are its defaults.
PROXY_CONFIG_DEFAULTS = {"concurrency": 2, "terminationDrainDuration": "5s",
                         "holdApplicationUntilProxyStarts": False}
CAPTURE_FLAGS = {"-i": "traffic.includeOutboundIPRanges", "-x": "traffic.excludeOutboundIPRanges",
                 "-b": "traffic.includeInboundPorts", "-d": "traffic.excludeInboundPorts",
                 "-q": "traffic.includeOutboundPorts", "-o": "traffic.excludeOutboundPorts"}
ISTIO_INBOUND_EXCLUSIONS = {"15090", "15021", "15020"}


def running_values(pod_spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """Leaf values the injected sidecar runs with, or None when the pod has no istio-proxy."""
    proxy = _container(pod_spec, "istio-proxy")
    if proxy is None:
        return None
    values: dict[str, Any] = {}
    values.update(_resources(proxy, "proxy"))
    init = _container(pod_spec, "istio-init")
    if init is not None:
        values.update(_resources(init, "init"))
        values.update(_capture(init))
    args = [str(a) for a in proxy.get("args") or []]
    for flag, leaf in (("--proxyLogLevel", "proxy.logLevel"),
                       ("--proxyComponentLogLevel", "proxy.componentLogLevel")):
        found = _flag(args, flag)
        if found is not None:
            values[leaf] = found
    values.update(_proxy_config(proxy))
    return values


def _container(pod_spec: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for key in ("containers", "initContainers"):
        for container in pod_spec.get(key) or []:
            if isinstance(container, dict) and container.get("name") == name:
                return container
    return None


def _resources(container: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    resources = container.get("resources") or {}
    return {f"{prefix}.resources.{group}.{res}": str(value)
            for group in ("requests", "limits") for res, value in (resources.get(group) or {}).items()
            if res in ("cpu", "memory")}


def _flag(args: list[str], flag: str) -> str | None:
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
    return None


def _capture(init: Mapping[str, Any]) -> dict[str, Any]:
    args = [str(a) for a in init.get("args") or []]
    values: dict[str, Any] = {}
    for flag, leaf in CAPTURE_FLAGS.items():
        found = _flag(args, flag)
        if found is None:
            continue
        if flag == "-d":
            found = ",".join(p for p in formats.split_list(found) if p not in ISTIO_INBOUND_EXCLUSIONS)
        values[leaf] = found.replace(" ", "")
    return values


def _proxy_config(proxy: Mapping[str, Any]) -> dict[str, Any]:
    raw = next((e.get("value") for e in proxy.get("env") or []
                if isinstance(e, dict) and e.get("name") == "PROXY_CONFIG"), None)
    try:
        config = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        config = {}
    config = {**PROXY_CONFIG_DEFAULTS, **config}
    values: dict[str, Any] = {"proxy.concurrency": config["concurrency"],
                              "lifecycle.terminationDrainDuration": config["terminationDrainDuration"],
                              "lifecycle.holdApplicationUntilProxyStarts":
                                  bool(config["holdApplicationUntilProxyStarts"])}
    metadata = config.get("proxyMetadata") or {}
    values["proxy.dnsCapture"] = str(metadata.get("ISTIO_META_DNS_CAPTURE", "false")).lower() == "true"
    for key, value in metadata.items():
        if key != "ISTIO_META_DNS_CAPTURE":
            values[fields.METADATA_PREFIX + key] = value
    return values


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
