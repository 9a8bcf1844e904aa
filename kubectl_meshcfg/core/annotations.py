"""Istio's own inputs mapped onto meshcfg leaves: pod annotations and ProxyConfig maps.

A ProxyConfig map is the YAML of `proxy.istio.io/config` or the mesh config's
`defaultConfig`; both carry the same keys. Invalid values are dropped and reported,
never fatal: that is what istiod does with them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from . import fields, formats, kubeyaml

PROXY_CONFIG = fields.PROXY_CONFIG_ANNOTATION
MANAGED_ANNOTATIONS = "meshcfg.io/managed-annotations"
DNS_CAPTURE_KEY = fields.DNS_CAPTURE_KEY

# Resource annotations (Istio drops the other three values when only some are set).
RESOURCE_ANNOTATIONS: tuple[str, ...] = tuple(fields.RESOURCE_ANNOTATION.values())
# Every annotation read, in the order they are read (the registry's).
READ_ANNOTATIONS = (*fields.LEAVES_BY_ANNOTATION, PROXY_CONFIG)
_READ_ORDER = {key: index for index, key in enumerate(READ_ANNOTATIONS)}


@dataclass
class LayerInput:
    """Leaf values read from Istio inputs, which key set each, and what was dropped."""

    values: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)      # leaf -> annotation key
    invalid: list[tuple[str, str]] = field(default_factory=list)   # (where, reason)
    resource_keys: list[str] = field(default_factory=list)   # resource annotations present

    def set(self, leaf: str, value: Any, key: str) -> None:
        self.values[leaf] = value
        self.keys[leaf] = key


def managed_keys(annotations: Mapping[str, str], synced: frozenset[str] | None = None
                 ) -> frozenset[str]:
    """Annotation keys meshcfg itself wrote: its output, never an input. Listed in
    meshcfg.io/managed-annotations and, where managedFields are known (`synced`), set by
    meshcfg's sync manager alone (a key a user also wrote, or edited, is the user's)."""
    listed = annotations.get(MANAGED_ANNOTATIONS, "")
    keys = frozenset(k.strip() for k in listed.split(",") if k.strip())
    return keys if synced is None else keys & synced


def user_keys(annotations: Mapping[str, str], synced: frozenset[str] | None = None
              ) -> frozenset[str]:
    """The Istio annotations a user wrote (inputs that render and sync never touch)."""
    managed = managed_keys(annotations, synced)
    return frozenset(key for key in annotations if key in _READ_ORDER and key not in managed)


def read_annotations(annotations: Mapping[str, str], synced: frozenset[str] | None = None
                     ) -> LayerInput:
    """The annotation layer of a pod (or pod template)."""
    result = LayerInput()
    keys = [key for key in annotations if key in _READ_ORDER]
    if not keys:
        return result
    managed = managed_keys(annotations, synced)
    for key in sorted(keys, key=_READ_ORDER.__getitem__):
        if key not in managed:
            if key in RESOURCE_ANNOTATIONS:
                result.resource_keys.append(key)
            _read_one(key, annotations[key], result)
    return result


def _read_one(key: str, text: str, result: LayerInput) -> None:
    if key == PROXY_CONFIG:
        parsed = _parse_proxy_config(text)
        if isinstance(parsed, str):
            result.invalid.append((key, parsed))
        else:
            read_proxy_config(parsed, key, result)
        return
    leaf_paths = fields.LEAVES_BY_ANNOTATION[key]
    leaf = fields.LEAF_BY_PATH[leaf_paths[0]]
    reason = _cached_check(leaf.path, text)
    if reason:
        result.invalid.append((key, reason))
        return
    value = fields.normalise(leaf, text)
    for path in leaf_paths:
        result.set(path, value, key)


@lru_cache(maxsize=65536)
def _cached_check(path: str, text: str) -> str | None:
    problem = fields.check_leaf(fields.LEAF_BY_PATH[path], text)
    return problem[1] if problem else None


@lru_cache(maxsize=65536)
def _parse_proxy_config_cached(text: str) -> tuple[str, Any]:
    try:
        parsed = kubeyaml.load(text)   # read as istiod reads it (sigs.k8s.io/yaml)
    except yaml.YAMLError as error:
        return ("error", "is not valid YAML: " + " ".join(str(error).split()))
    if parsed is None:
        return ("ok", {})
    if not isinstance(parsed, dict):
        return ("error", "must be a ProxyConfig map such as {concurrency: 2}")
    return ("ok", parsed)


def _parse_proxy_config(text: str) -> dict[str, Any] | str:
    status, value = _parse_proxy_config_cached(text)
    return value if status == "ok" else str(value)


def read_proxy_config(config: Mapping[str, Any], key: str,
                      result: LayerInput | None = None) -> LayerInput:
    """Leaves carried by a ProxyConfig map (`proxy.istio.io/config` or `defaultConfig`).
    Keys meshcfg does not manage are left alone."""
    result = result if result is not None else LayerInput()
    for name, leaf_path in fields.PROXY_CONFIG_LEAVES.items():
        if name in config and config[name] is not None:
            _read_proxy_config_value(name, config[name], fields.LEAF_BY_PATH[leaf_path],
                                     key, result)
    metadata = config.get("proxyMetadata")
    if metadata is not None:
        _read_metadata(metadata, key, result)
    return result


def _read_proxy_config_value(name: str, raw: Any, leaf: fields.Leaf, key: str,
                             result: LayerInput) -> None:
    value = _coerce(leaf, raw)
    problem = fields.check_leaf(leaf, value)
    if problem:
        result.invalid.append((f"{key} {name}{problem[0]}", problem[1]))
    else:
        result.set(leaf.path, fields.normalise(leaf, value), key)


def _coerce(leaf: fields.Leaf, raw: Any) -> Any:
    """Istio's ProxyConfig JSON carries numbers and booleans as strings too."""
    if leaf.kind == "int":
        converted: Any = formats.as_int(raw)
    elif leaf.kind == "bool":
        converted = formats.as_bool(raw)
    else:
        return raw
    return raw if converted is None else converted


def _read_metadata(metadata: Any, key: str, result: LayerInput) -> None:
    if not isinstance(metadata, dict):
        result.invalid.append((f"{key} proxyMetadata", "must be a map of strings"))
        return
    for name, raw in metadata.items():
        value = raw if isinstance(raw, str) else formats.scalar_text(raw)
        if isinstance(raw, bool):
            value = "true" if raw else "false"
        leaf = fields.PROXY_CONFIG_METADATA_LEAVES.get(str(name))
        if leaf is not None:
            flag = formats.as_bool(value)
            if flag is None:
                result.invalid.append((f"{key} proxyMetadata.{name}", f"{raw!r} is not true or false"))
            else:
                result.set(leaf, flag, key)
        elif value is None or not formats.ENV_NAME_RE.match(str(name)):
            result.invalid.append((f"{key} proxyMetadata.{name}", "must be NAME: string"))
        else:
            result.set(fields.METADATA_PREFIX + str(name), value, key)


def read_injector_values(values: Mapping[str, Any], where: str) -> LayerInput:
    """Leaves the injector's chart values set (`fields.Istio.default_from` "values:PATH")."""
    result = LayerInput()
    for leaf in fields.LEAVES:
        source = leaf.istio.default_from
        if not source.startswith("values:"):
            continue
        raw: Any = values
        for key in source.removeprefix("values:").split("."):
            raw = raw.get(key) if isinstance(raw, dict) else None
        if raw is None:
            continue
        _read_proxy_config_value(source.removeprefix("values:"), _as_text(leaf, raw), leaf,
                                 where, result)
    return result


def _as_text(leaf: fields.Leaf, raw: Any) -> Any:
    """Helm renders a quantity written as a number (cpu: 2) as a JSON number."""
    if leaf.kind == "quantity" and isinstance(raw, int | float) and not isinstance(raw, bool):
        return formats.scalar_text(raw)
    return raw
