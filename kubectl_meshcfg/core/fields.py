"""The leaf registry: every field of a SidecarProxyConfig spec that resolution tracks.

This table is the single source of truth: offline validation walks it, the CRD schema is
generated from it (`crd.py`), and each leaf carries its Istio mapping (`Istio`): the
annotation or `proxy.istio.io/config` key that sets it (read in `annotations.py`), how
render writes it (`render.py`), how it reads back from an injected pod (`staleness.py`)
and where Istio's default comes from. explain reports the leaves in this order.
Adding a field is one entry here plus tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import formats
from .bounded import shown

Value = Any


# How render writes a leaf (Istio's injector reads only these).
WRITE_ANNOTATION = "annotation"            # the pod annotation `Istio.annotation`
WRITE_PROXY_CONFIG = "proxy-config"        # a key of the `proxy.istio.io/config` annotation
WRITE_INIT = "istio-init"                  # the pod spec's istio-init override
WRITE_PROXY = "istio-proxy"                # the pod spec's istio-proxy override

# How a leaf is read back from a pod the injector injected (`staleness.py`).
READ_RESOURCES = "resources"      # (READ_RESOURCES, container, group, resource)
READ_ARG = "arg"                  # (READ_ARG, container, flag)
READ_PROXY_CONFIG = "proxy-config"   # (READ_PROXY_CONFIG, key or proxyMetadata.KEY): PROXY_CONFIG env


@dataclass(frozen=True)
class Istio:
    """Where a leaf lives in Istio's own inputs and outputs."""

    annotation: str = ""          # pod annotation that sets it (resource ones set proxy and init)
    proxy_config: str = ""        # key in a ProxyConfig map (`proxy.istio.io/config`,
                                  # defaultConfig); "proxyMetadata.KEY" for an env flag
    write: str = ""               # how render writes it (WRITE_*)
    injected: tuple[str, ...] = ()   # how it reads back from an injected pod (READ_*); () = not
    default_from: str = ""        # what sets Istio's default: "values:PATH" (injector values),
                                  # "proxy-config" (pilot's ProxyConfig defaults), "" = none


@dataclass(frozen=True)
class Leaf:
    path: str                 # dotted path below spec, e.g. "proxy.resources.limits.cpu"
    kind: str                 # quantity|int|bool|enum|duration|ports|cidrs|componentLog|object
    help: str
    default: Value = None     # Istio's built-in value (the "default" layer); None = unset
    include: bool = False     # ports/cidrs: "*" allowed
    atomic: str = ""          # object leaves: which validator (statsMatcher|keyProvider|...)
    istio: Istio = Istio()


class Derived:
    """A default that is not a constant: pilot-agent derives it at start-up."""

    def __init__(self, rule: str):
        self.rule = rule

    def __repr__(self) -> str:
        return f"<derived: {self.rule}>"


# concurrency left unset: pilot-agent runs ceil(CPU limit) workers, all cores without a limit
DERIVED_CONCURRENCY = Derived("ceil(proxy.resources.limits.cpu), 0 without a limit")


@lru_cache(maxsize=4096)
def derive_concurrency(cpu_limit: str | None) -> int:
    """pilot-agent's concurrency when none is set (pilot/cmd/pilot-agent/config/config.go)."""
    cores = formats.parse_quantity(cpu_limit) if cpu_limit else None
    return math.ceil(cores) if cores is not None and cores > 0 else 0

# The pinned Istio chart's values (manifests/charts/istio-control/istio-discovery/values.yaml):
# `global.proxy.resources` is used for istio-proxy AND istio-init.
CHART_RESOURCES = {"requests.cpu": "100m", "requests.memory": "128Mi",
                   "limits.cpu": "2000m", "limits.memory": "1024Mi"}

METADATA_PREFIX = "proxy.proxyMetadata."
METADATA_PATH = "proxy.proxyMetadata"
PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"
DNS_CAPTURE_KEY = "ISTIO_META_DNS_CAPTURE"
RESOURCE_ANNOTATION = {("requests", "cpu"): "sidecar.istio.io/proxyCPU",
                       ("requests", "memory"): "sidecar.istio.io/proxyMemory",
                       ("limits", "cpu"): "sidecar.istio.io/proxyCPULimit",
                       ("limits", "memory"): "sidecar.istio.io/proxyMemoryLimit"}
CONTAINERS = {"proxy": "istio-proxy", "init": "istio-init"}


def _resources(container: str, defaults: Mapping[str, str]) -> list[Leaf]:
    return [
        Leaf(f"{container}.resources.{group}.{res}", "quantity",
             f"{container} container {res} {group[:-1]}", defaults[f"{group}.{res}"],
             istio=Istio(annotation=RESOURCE_ANNOTATION[(group, res)],
                         write=WRITE_ANNOTATION if container == "proxy" else WRITE_INIT,
                         injected=(READ_RESOURCES, CONTAINERS[container], group, res),
                         default_from=f"values:global.proxy.resources.{group}.{res}"))
        for group in ("requests", "limits") for res in ("cpu", "memory")
    ]


def _proxy_config(key: str, default_from: str = "proxy-config", read_back: bool = True) -> Istio:
    return Istio(proxy_config=key, write=WRITE_PROXY_CONFIG,
                 injected=(READ_PROXY_CONFIG, key) if read_back else (), default_from=default_from)


def _annotation(name: str, injected: tuple[str, ...], values_key: str) -> Istio:
    return Istio(annotation=name, write=WRITE_ANNOTATION, injected=injected,
                 default_from=f"values:global.proxy.{values_key}")


def _traffic(name: str, kind: str, help_text: str, default: str, flag: str, values_key: str,
             include: bool = False) -> Leaf:
    return Leaf(f"traffic.{name}", kind, help_text, default, include=include,
                istio=_annotation(f"traffic.sidecar.istio.io/{name}", (READ_ARG, "istio-init", flag),
                                  values_key))


LEAVES: tuple[Leaf, ...] = (
    *_resources("proxy", CHART_RESOURCES),
    Leaf("proxy.concurrency", "int",
         "Envoy worker threads; 0 = all cores", DERIVED_CONCURRENCY,
         istio=_proxy_config("concurrency")),
    Leaf("proxy.logLevel", "enum", "Envoy log level", "warning",
         istio=_annotation("sidecar.istio.io/logLevel", (READ_ARG, "istio-proxy", "--proxyLogLevel"),
                           "logLevel")),
    Leaf("proxy.componentLogLevel", "componentLog",
         "per-component Envoy log levels, e.g. misc:error,upstream:debug", "misc:error",
         istio=_annotation("sidecar.istio.io/componentLogLevel",
                           (READ_ARG, "istio-proxy", "--proxyComponentLogLevel"), "componentLogLevel")),
    Leaf("proxy.proxyStatsMatcher", "object", "extra Envoy stats to keep",
         atomic="statsMatcher", istio=_proxy_config("proxyStatsMatcher", "", read_back=False)),
    Leaf("proxy.privateKeyProvider", "object",
         "private key provider (Intel Multi-Buffer cryptomb)", atomic="keyProvider",
         istio=_proxy_config("privateKeyProvider", "", read_back=False)),
    Leaf("proxy.dnsCapture", "bool", "Istio DNS proxying (ISTIO_META_DNS_CAPTURE)", False,
         istio=_proxy_config(f"proxyMetadata.{DNS_CAPTURE_KEY}")),
    *_resources("init", CHART_RESOURCES),
    _traffic("includeInboundPorts", "ports", "inbound ports captured ('*' = all)", "*", "-b",
             "includeInboundPorts", include=True),
    _traffic("excludeInboundPorts", "ports", "inbound ports not captured", "", "-d",
             "excludeInboundPorts"),
    _traffic("includeOutboundPorts", "ports", "outbound ports always captured", "", "-q",
             "includeOutboundPorts", include=True),
    _traffic("excludeOutboundPorts", "ports", "outbound ports not captured", "", "-o",
             "excludeOutboundPorts"),
    _traffic("includeOutboundIPRanges", "cidrs", "outbound IP ranges captured ('*' = all)", "*",
             "-i", "includeIPRanges", include=True),
    _traffic("excludeOutboundIPRanges", "cidrs", "outbound IP ranges not captured", "", "-x",
             "excludeIPRanges"),
    Leaf("lifecycle.holdApplicationUntilProxyStarts", "bool",
         "start the application only once the proxy is ready", False,
         istio=_proxy_config("holdApplicationUntilProxyStarts",
                             "values:global.proxy.holdApplicationUntilProxyStarts")),
    Leaf("lifecycle.terminationDrainDuration", "duration",
         "how long pilot-agent lets Envoy drain after SIGTERM", "5s",
         istio=_proxy_config("terminationDrainDuration")),
    Leaf("lifecycle.postStart", "object", "istio-proxy postStart handler", atomic="handler",
         istio=Istio(write=WRITE_PROXY)),
    Leaf("lifecycle.preStop", "object", "istio-proxy preStop handler", atomic="handler",
         istio=Istio(write=WRITE_PROXY)),
    Leaf("lifecycle.drainAgent", "object", "use meshcfg-drain as the preStop hook",
         atomic="drainAgent", istio=Istio(write=WRITE_PROXY)),
)
LEAF_BY_PATH: dict[str, Leaf] = {leaf.path: leaf for leaf in LEAVES}
# Istio's keys, to the leaves they set (derived from the table above).
LEAVES_BY_ANNOTATION: dict[str, tuple[str, ...]] = {}
for _leaf in LEAVES:
    if _leaf.istio.annotation:
        LEAVES_BY_ANNOTATION.setdefault(_leaf.istio.annotation, ())
        LEAVES_BY_ANNOTATION[_leaf.istio.annotation] += (_leaf.path,)
PROXY_CONFIG_LEAVES: dict[str, str] = {   # top-level ProxyConfig key -> leaf
    leaf.istio.proxy_config: leaf.path for leaf in LEAVES
    if leaf.istio.proxy_config and "." not in leaf.istio.proxy_config}
PROXY_CONFIG_METADATA_LEAVES: dict[str, str] = {   # proxyMetadata KEY with a leaf of its own
    leaf.istio.proxy_config.split(".", 1)[1]: leaf.path for leaf in LEAVES
    if leaf.istio.proxy_config.startswith("proxyMetadata.")}
ORDER: dict[str, int] = {leaf.path: i for i, leaf in enumerate(LEAVES)}
METADATA_ORDER = ORDER["proxy.dnsCapture"] + 0.5   # metadata keys sort after dnsCapture

# Non-leaf objects of the spec and the keys each may hold (derived from the leaf paths).
def _containers() -> dict[str, tuple[str, ...]]:
    children: dict[str, list[str]] = {"": []}
    for path in [leaf.path for leaf in LEAVES] + [METADATA_PATH]:
        parts = path.split(".")
        for depth in range(len(parts)):
            parent = ".".join(parts[:depth])
            children.setdefault(parent, [])
            if parts[depth] not in children[parent]:
                children[parent].append(parts[depth])
    return {parent: tuple(keys) for parent, keys in children.items()}


OBJECTS: dict[str, tuple[str, ...]] = {
    parent: keys for parent, keys in _containers().items()
    if parent not in LEAF_BY_PATH and parent != METADATA_PATH
}


def leaf_for(path: str) -> Leaf:
    """The registry entry of a leaf path (metadata keys share one entry)."""
    if path.startswith(METADATA_PREFIX):
        return Leaf(path, "string", "proxy metadata (extra proxy environment)")
    return LEAF_BY_PATH[path]


def sort_key(path: str) -> tuple[float, str]:
    if path.startswith(METADATA_PREFIX):
        return (METADATA_ORDER, path)
    return (ORDER[path], "")


# ---- validation of one leaf value ---------------------------------------------------------

Problem = tuple[str, str]   # (sub-path below the leaf, "" for the leaf itself; reason)


def check_leaf(leaf: Leaf, value: Value) -> Problem | None:
    """Why value is not valid for leaf, or None."""
    checker = _SCALAR_CHECKS.get(leaf.kind)
    if checker is not None:
        reason = checker(leaf, value)
        return ("", reason) if reason else None
    return _ATOMIC_CHECKS[leaf.atomic](value)


def _check_int(leaf: Leaf, value: Value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{shown(value)} is not an integer"
    if not 0 <= value <= MAX_CONCURRENCY:
        return f"{value} is out of range (0-{MAX_CONCURRENCY})"
    return None


def _check_bool(leaf: Leaf, value: Value) -> str | None:
    return None if isinstance(value, bool) else f"{shown(value)} is not a boolean (true|false)"


MAX_CONCURRENCY = 1024
MAX_STRING = 256
MAX_ITEMS = 64

_SCALAR_CHECKS: dict[str, Callable[[Leaf, Value], str | None]] = {
    "quantity": lambda leaf, v: formats.check_quantity(v),
    "int": _check_int,
    "bool": _check_bool,
    "enum": lambda leaf, v: formats.check_log_level(v),
    "componentLog": lambda leaf, v: formats.check_component_log_level(v),
    "duration": lambda leaf, v: formats.check_duration(v),
    "ports": lambda leaf, v: formats.check_port_list(v, leaf.include),
    "cidrs": lambda leaf, v: formats.check_cidr_list(v, leaf.include),
    "string": lambda leaf, v: _check_string(v, 4096),
}


def _check_string(value: Value, max_length: int = MAX_STRING) -> str | None:
    if not isinstance(value, str):
        return f"{shown(value)} is not a string"
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    return None


def _unknown_keys(obj: Mapping[str, Value], allowed: tuple[str, ...]) -> Problem | None:
    for key in obj:
        if key not in allowed:
            return (f".{key}", f"unknown field (allowed: {', '.join(allowed)})")
    return None


def _check_string_list(value: Value) -> str | None:
    if not isinstance(value, list):
        return "must be a list of strings"
    if len(value) > MAX_ITEMS:
        return f"has more than {MAX_ITEMS} items"
    for item in value:
        reason = _check_string(item)
        if reason:
            return reason
    return None


STATS_KEYS = ("inclusionPrefixes", "inclusionSuffixes", "inclusionRegexps")


def _check_stats_matcher(value: Value) -> Problem | None:
    if not isinstance(value, dict):
        return ("", "must be an object with " + ", ".join(STATS_KEYS))
    unknown = _unknown_keys(value, STATS_KEYS)
    if unknown:
        return unknown
    for key, items in value.items():
        reason = _check_string_list(items)
        if reason:
            return (f".{key}", reason)
    return None


def _check_key_provider(value: Value) -> Problem | None:
    if not isinstance(value, dict) or "cryptomb" not in value:
        return ("", "must be {cryptomb: {pollDelay: 10ms, fallback: true}}")
    unknown = _unknown_keys(value, ("cryptomb",))
    if unknown:
        return unknown
    cryptomb = value["cryptomb"]
    if not isinstance(cryptomb, dict):
        return (".cryptomb", "must be an object with pollDelay and fallback")
    unknown = _unknown_keys(cryptomb, ("pollDelay", "fallback"))
    if unknown:
        return (".cryptomb" + unknown[0], unknown[1])
    if "pollDelay" in cryptomb:
        reason = formats.check_duration(cryptomb["pollDelay"])
        seconds = formats.parse_duration(cryptomb["pollDelay"]) if not reason else None
        if reason or (seconds is not None and seconds < 0.001):
            return (".cryptomb.pollDelay", reason or "must be at least 1ms")
    if "fallback" in cryptomb and not isinstance(cryptomb["fallback"], bool):
        return (".cryptomb.fallback", f"{shown(cryptomb['fallback'])} is not a boolean")
    return None


HANDLER_KINDS = ("exec", "httpGet", "tcpSocket", "sleep")


def _check_handler(value: Value) -> Problem | None:
    if not isinstance(value, dict):
        return ("", "must be a core/v1 LifecycleHandler (exec, httpGet, tcpSocket or sleep)")
    unknown = _unknown_keys(value, HANDLER_KINDS)
    if unknown:
        return unknown
    if len(value) != 1:
        return ("", "must set exactly one of exec, httpGet, tcpSocket, sleep")
    kind, body = next(iter(value.items()))
    if not isinstance(body, dict):
        return (f".{kind}", "must be an object")
    return _HANDLER_CHECKS[kind](body)


def _check_exec(body: Mapping[str, Value]) -> Problem | None:
    unknown = _unknown_keys(body, ("command",))
    if unknown:
        return (".exec" + unknown[0], unknown[1])
    command = body.get("command")
    reason = _check_string_list(command) if command is not None else "is required"
    if reason is None and not command:
        reason = "must not be empty"
    return (".exec.command", reason) if reason else None


def _check_port_ref(where: str, port: Value) -> Problem | None:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return None
    if isinstance(port, str) and formats.LABEL_NAME_RE.fullmatch(port) and len(port) <= 15:
        return None
    return (where + ".port", f"{shown(port)} is not a port number (1-65535) or name")


def _check_http_get(body: Mapping[str, Value]) -> Problem | None:
    allowed = ("path", "port", "host", "scheme", "httpHeaders")
    unknown = _unknown_keys(body, allowed)
    if unknown:
        return (".httpGet" + unknown[0], unknown[1])
    if body.get("scheme", "HTTP") not in ("HTTP", "HTTPS"):
        return (".httpGet.scheme", f"{shown(body['scheme'])} is not HTTP or HTTPS")
    for key in ("path", "host"):
        if key in body and (reason := _check_string(body[key])):
            return (f".httpGet.{key}", reason)
    headers = body.get("httpHeaders", [])
    if not isinstance(headers, list) or len(headers) > MAX_ITEMS or not all(
            isinstance(h, dict) and set(h) == {"name", "value"}
            and not _check_string(h["name"]) and not _check_string(h["value"])
            for h in headers):
        return (".httpGet.httpHeaders",
                f"must be a list of at most {MAX_ITEMS} {{name, value}} strings")
    return _check_port_ref(".httpGet", body.get("port"))


def _check_tcp_socket(body: Mapping[str, Value]) -> Problem | None:
    unknown = _unknown_keys(body, ("port", "host"))
    if unknown:
        return (".tcpSocket" + unknown[0], unknown[1])
    if "host" in body and (reason := _check_string(body["host"])):
        return (".tcpSocket.host", reason)
    return _check_port_ref(".tcpSocket", body.get("port"))


def _check_sleep(body: Mapping[str, Value]) -> Problem | None:
    unknown = _unknown_keys(body, ("seconds",))
    if unknown:
        return (".sleep" + unknown[0], unknown[1])
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        return (".sleep.seconds", f"{shown(seconds)} is not a whole number of seconds >= 0")
    return None


_HANDLER_CHECKS: dict[str, Callable[[Mapping[str, Value]], Problem | None]] = {
    "exec": _check_exec, "httpGet": _check_http_get, "tcpSocket": _check_tcp_socket,
    "sleep": _check_sleep,
}

DRAIN_AGENT_KEYS = ("enabled", "minDrainDuration", "image")


def _check_drain_agent(value: Value) -> Problem | None:
    if not isinstance(value, dict):
        return ("", "must be an object such as {enabled: true}")
    unknown = _unknown_keys(value, DRAIN_AGENT_KEYS)
    if unknown:
        return unknown
    if not isinstance(value.get("enabled"), bool):
        return (".enabled", "is required and must be a boolean")
    if "minDrainDuration" in value and (reason := formats.check_duration(value["minDrainDuration"])):
        return (".minDrainDuration", reason)
    if "image" in value and (reason := _check_string(value["image"])):
        return (".image", reason)
    return None


_ATOMIC_CHECKS: dict[str, Callable[[Value], Problem | None]] = {
    "statsMatcher": _check_stats_matcher,
    "keyProvider": _check_key_provider,
    "handler": _check_handler,
    "drainAgent": _check_drain_agent,
}


def normalise(leaf: Leaf, value: Value) -> Value:
    """A valid value in the form explain reports (see SPEC section 4)."""
    if leaf.kind == "quantity":
        return formats.scalar_text(value)
    if leaf.kind in ("ports", "cidrs", "componentLog"):
        return str(value).replace(" ", "")
    return value
