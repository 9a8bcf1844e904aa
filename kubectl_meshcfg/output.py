"""Human-readable text for explain, lint and get; machine formats are plain dumps."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from .warnings import FIXES

Effective = Mapping[str, Any]


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Safe YAML, written by libyaml when present; never `&id001`/`*id001` aliases (the
    resolver shares field objects between targets, which the default dumper turns into
    anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(obj: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(obj, indent=2) + "\n"
    return str(yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False))


def dump_stream(docs: Sequence[Any]) -> str:
    """A YAML stream, one document per object."""
    return str(yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False))


def as_list(items: Sequence[Any], named_one: bool) -> Any:
    """SPEC section 4: one target gives one object, several a List."""
    if named_one and len(items) == 1:
        return items[0]
    return {"kind": "List", "items": list(items)}


def describe_source(source: Mapping[str, Any]) -> str:
    layer = source["layer"]
    if layer == "annotation":
        return f"annotation {source['annotation']}"
    if layer == "mesh":
        return f"mesh ConfigMap {source['namespace']}/{source['name']}"
    if "name" in source:
        return f"{layer} {source['namespace']}/{source['name']}"
    return str(layer)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def explain_text(effective: Effective) -> str:
    target = effective["target"]
    lines = [f"{target['kind']}: {target['name']}.{target['namespace']}",
             f"Precedence: {effective['precedence']} ({_order(effective['precedence'])})", ""]
    rows = [("FIELD", "VALUE", "SOURCE", "OVERRIDES")]
    for path, field in effective["fields"].items():
        shadowed = ", ".join(f"{format_value(e['value'])} ({describe_source(e['source'])})"
                             for e in field["overridden"])
        rows.append((path, format_value(field["value"]), describe_source(field["source"]),
                     shadowed or "-"))
    lines += table(rows)
    lines += warnings_text(effective["warnings"])
    return "\n".join(lines) + "\n"


def _order(precedence: str) -> str:
    from .resolve import LAYER_ORDER  # noqa: PLC0415 (avoid a cycle at import time)

    return " < ".join(LAYER_ORDER[precedence])


def warnings_text(found: Iterable[Mapping[str, Any]], indent: str = "") -> list[str]:
    found = list(found)
    if not found:
        return ["", f"{indent}No warnings."]
    lines = ["", f"{indent}Warnings:"]
    for warning in found:
        lines.append(f"{indent}  ! {warning['code']}: {warning['message']}")
        if warning["code"] in FIXES:
            lines.append(f"{indent}    fix: {FIXES[warning['code']]}")
    return lines


def lint_text(results: Sequence[Effective]) -> str:
    lines = []
    for effective in results:
        target = effective["target"]
        where = f"{target['kind'].lower()}/{target['name']} ({target['namespace']})"
        for warning in effective["warnings"]:
            lines.append(f"{where}: {warning['code']}: {warning['message']}")
            if warning["code"] in FIXES:
                lines.append(f"    fix: {FIXES[warning['code']]}")
    count = sum(len(e["warnings"]) for e in results)
    lines.append(f"{count} warning{'s' if count != 1 else ''} in {len(results)} "
                 f"target{'s' if len(results) != 1 else ''}")
    return "\n".join(lines) + "\n"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


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
