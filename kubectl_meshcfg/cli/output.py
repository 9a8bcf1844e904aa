"""Human-readable text for explain, lint and get; machine formats are plain dumps."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from ..core.effective import Effective
from ..core.resolve import LAYER_ORDER
from ..core.warnings import FIXES


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


def without_managed_fields(doc: Mapping[str, Any], keep: bool) -> dict[str, Any]:
    """The object as kubectl prints it: metadata.managedFields only with
    --show-managed-fields."""
    out = dict(doc)
    if not keep and isinstance(out.get("metadata"), Mapping):
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "managedFields"}
    return out


def describe_source(source: Mapping[str, Any]) -> str:
    layer = source["layer"]
    if layer == "annotation":
        return f"annotation {source['annotation']}"
    if layer == "mesh" or source.get("kind") == "ProxyConfig":
        return f"{layer} {source['kind']} {source['namespace']}/{source['name']}"
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
             f"Precedence: {effective['precedence']} ({_order(effective['precedence'])})"]
    if _istio_sourced(effective):
        lines.append("Istio ProxyConfigs: istio-global < istio-namespace above mesh; istio-workload "
                     "above all for proxyMetadata, below meshcfg's layers for concurrency "
                     "(docs/precedence.md)")
    lines.append("")
    rows = [("FIELD", "VALUE", "SOURCE", "OVERRIDES")]
    for path, field in effective["fields"].items():
        shadowed = ", ".join(f"{format_value(e['value'])} ({describe_source(e['source'])})"
                             for e in field["overridden"])
        source = describe_source(field["source"])
        for added in field.get("added", ()):
            source += f" + {format_value(added['value'])} for the drain agent " \
                      f"({describe_source(added['source'])})"
        rows.append((path, format_value(field["value"]), source, shadowed or "-"))
    lines += table(rows)
    lines += warnings_text(effective["warnings"])
    return "\n".join(lines) + "\n"


def _istio_sourced(effective: Effective) -> bool:
    return any(entry["source"]["layer"].startswith("istio-")
               for field in effective["fields"].values()
               for entry in [field, *field["overridden"]])


def _order(precedence: str) -> str:
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


def diff_text(result: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for item in result["items"]:
        target = item["target"]
        count = len(item["fields"])
        note = {"added": " (new target)", "removed": " (target removed)"}.get(item["status"], "")
        lines.append(f"{target['kind'].lower()}/{target['name']} (namespace "
                     f"{target['namespace']}){note}: {count} field{'s' if count != 1 else ''} "
                     "change")
        rows = [("FIELD", "BEFORE", "AFTER")]
        rows += [(c["field"], _side(c["before"]), _side(c["after"])) for c in item["fields"]]
        if len(rows) > 1:
            lines += ["  " + row for row in table(rows)]
        lines += _warning_lines("+", item["warnings"]["added"])
        lines += _warning_lines("-", item["warnings"]["removed"])
        lines.append("")
    summary = result["summary"]
    if summary["changed"]:
        lines.append(f"{summary['changed']} of {summary['targets']} targets change "
                     f"({summary['fields']} fields).")
    else:
        lines.append(f"No changes: the effective config of all {summary['targets']} targets "
                     "stays the same.")
    return "\n".join(lines) + "\n"


def _side(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "(unset)"
    return f"{format_value(entry['value'])} ({describe_source(entry['source'])})"


def _warning_lines(sign: str, found: Iterable[Mapping[str, Any]]) -> list[str]:
    return [f"  {sign} warning {w['code']}: {w['message']}" for w in found]
