"""The shape of the central result, SPEC section 4's EffectiveSidecarConfig, for mypy.

Plain dicts at run time (resolution builds hundreds of thousands of them and they are
dumped as they are); these TypedDicts let mypy --strict check every reader and writer.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class Source(TypedDict):
    """Which layer set a value: `{"layer": "default"}`, a ConfigMap or SidecarProxyConfig
    (`kind`, `namespace`, `name`), or an annotation (`annotation`)."""

    layer: str
    kind: NotRequired[str]
    namespace: NotRequired[str]
    name: NotRequired[str]
    annotation: NotRequired[str]


class Entry(TypedDict):
    value: Any
    source: Source


class Field(TypedDict):
    value: Any
    source: Source
    overridden: list[Entry]          # the lower sources that set the leaf, highest first
    added: NotRequired[list[Entry]]  # merged in by another leaf (the drain agent's stats)


class Finding(TypedDict):
    """One warning (`code` is the SPEC's warning code)."""

    code: str
    message: str
    objects: NotRequired[list[str]]


class TargetRef(TypedDict):
    kind: str
    namespace: str
    name: str


class Effective(TypedDict):
    apiVersion: str
    kind: str
    target: TargetRef
    precedence: str
    fields: dict[str, Field]
    warnings: list[Finding]


def values_of(effective: Effective) -> dict[str, Any]:
    """leaf -> effective value."""
    return {path: field["value"] for path, field in effective["fields"].items()}


def describe_source(source: Source) -> str:
    """A source in a warning: `annotation K`, `KIND NS/NAME`, or `the LAYER layer`."""
    if source["layer"] == "annotation":
        return f"annotation {source.get('annotation')}"
    if "name" not in source:
        return f"the {source['layer']} layer"
    return f"{source.get('kind', '')} {source.get('namespace')}/{source.get('name')}".strip()
