"""The SidecarProxyConfig CustomResourceDefinition, generated from the leaf registry.

`fields.LEAVES` / `fields.OBJECTS` give the shape of the spec, `formats` the value formats
and their limits; this module turns them into a structural OpenAPI v3 schema with CEL
`x-kubernetes-validations`, so the API server enforces what offline validation enforces.

    python -m kubectl_meshcfg.core.crd > manifests/crds/sidecarproxyconfigs.meshcfg.io.yaml

(`scripts/gen-crd` does exactly that.) `tests/unit/test_crd.py` checks the committed file
equals this module's output.

Unknown fields: a structural schema makes the API server *prune* unknown fields; it only
*rejects* them when the client asks for strict field validation, which kubectl does by
default (`--validate=strict`, query parameter `fieldValidation=Strict`). `kubectl apply
--validate=false` (or a raw request without the parameter) gets them silently dropped.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml

from . import fields, formats
from .model import API_GROUP, KIND

VERSION = "v1alpha1"
PLURAL = "sidecarproxyconfigs"
SINGULAR = "sidecarproxyconfig"
SHORT_NAMES = ["spc"]
CRD_NAME = f"{PLURAL}.{API_GROUP}"
MANIFEST_PATH = f"manifests/crds/{CRD_NAME}.yaml"

Schema = dict[str, Any]

# Length limits the schema carries (they also bound the CEL cost estimate).
MAX_QUANTITY = formats.MAX_QUANTITY
MAX_DURATION = formats.MAX_DURATION
MAX_COMPONENT_LOG = formats.MAX_COMPONENT_LOG
MAX_METADATA_VALUE = formats.MAX_METADATA_VALUE
MAX_LABEL_VALUE = 63
MAX_PORT_NAME = 15


def _bare(pattern: re.Pattern[str]) -> str:
    """A Python pattern of the form ^...$ without its anchors (RE2 compatible)."""
    text = pattern.pattern
    assert text.startswith("^") and text.endswith("$"), text
    return text[1:-1]


def _anchored(inner: str) -> str:
    return f"^(?:{inner})$"


def _cel_string(text: str) -> str:
    """A CEL string literal (single-quoted, raw so regex backslashes stay as they are)."""
    assert "'" not in text and "\n" not in text, text
    return f"r'{text}'" if "\\" in text else f"'{text}'"


DURATION_PATTERN = _anchored("0|" + _bare(formats.DURATION_RE))
_LEVELS = "|".join(formats.LOG_LEVELS)
COMPONENT_LOG_PATTERN = f"^[a-z_0-9]+:(?:{_LEVELS})(?:,[a-z_0-9]+:(?:{_LEVELS}))*$"
LABEL_KEY_PATTERN = (f"^(?:{_bare(formats.DNS_SUBDOMAIN_RE)}/)?"
                     f"{_bare(formats.LABEL_NAME_RE)}$")
PORT_ITEM = "[1-9][0-9]{0,4}"


def _rule(rule: str, message: str, field_path: str | None = None,
          reason: str | None = None) -> dict[str, str]:
    out = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def _with_help(schema: Schema, help_text: str) -> Schema:
    return {"description": help_text, **schema} if help_text else schema


# ---- scalar formats -------------------------------------------------------------------------

def quantity_schema(help_text: str = "") -> Schema:
    return _with_help({
        "x-kubernetes-int-or-string": True, "maxLength": MAX_QUANTITY,
        "x-kubernetes-validations": [
            # isQuantity alone accepts "m", "Gi" or "." (as zero): require a number
            _rule("type(self) == int || (isQuantity(self) && "
                  r"self.matches(r'^[+-]?(?:[0-9]|\.[0-9])'))",
                  "must be a Kubernetes quantity such as 500m, 2 or 1Gi"),
            _rule("type(self) == int ? self >= 0 : (!isQuantity(self) || "
                  "quantity(self).compareTo(quantity('0')) >= 0)", "must not be negative"),
        ],
    }, help_text)


def duration_schema(help_text: str = "", minimum: str | None = None) -> Schema:
    rules = [_rule(f"!self.matches({_cel_string(DURATION_PATTERN)}) || "
                   "duration(self) >= duration('0s')",
                   "must be a Go duration no longer than 2562047h")]
    if minimum:
        rules.append(_rule(f"!self.matches({_cel_string(DURATION_PATTERN)}) || "
                           f"duration(self) >= duration('{minimum}')",
                           f"must be at least {minimum}"))
    return _with_help({
        "type": "string", "maxLength": MAX_DURATION, "pattern": DURATION_PATTERN,
        "x-kubernetes-validations": rules,
    }, help_text)


def _list_rules(include: bool, item_rule: str, what: str, max_items: int) -> list[dict[str, str]]:
    compact = "self.replace(' ', '')"
    rules = []
    if include:
        rules.append(_rule(f"!self.contains('*') || {compact} == '*'",
                           "'*' must stand alone (it means all)"))
    else:
        rules.append(_rule("!self.contains('*')", "'*' is only allowed in include fields"))
    rules += [
        _rule(f"{compact} == '' || {compact} == '*' || "
              f"(self.matches('^ *[^ ,]+ *(, *[^ ,]+ *)*$') && "
              f"{compact}.split(',').all(x, {item_rule}))", what),
        _rule(f"{compact}.split(',').size() <= {max_items}", f"lists more than {max_items} items"),
    ]
    return rules


def ports_schema(help_text: str, include: bool) -> Schema:
    item = f"x == '*' || (x.matches('^{PORT_ITEM}$') && int(x) <= 65535)"
    return _with_help({
        "type": "string", "maxLength": formats.MAX_PORT_LIST,
        "x-kubernetes-validations": _list_rules(
            include, item, "must be comma-separated ports 1-65535 such as \"80,443\"",
            formats.MAX_PORTS),
    }, help_text)


def cidrs_schema(help_text: str, include: bool) -> Schema:
    return _with_help({
        "type": "string", "maxLength": formats.MAX_CIDR_LIST,
        "x-kubernetes-validations": _list_rules(
            include, "x == '*' || isCIDR(x)",
            "must be comma-separated CIDRs such as \"10.96.0.0/12,fd00::/8\"",
            formats.MAX_CIDRS),
    }, help_text)


def string_schema(max_length: int = fields.MAX_STRING, help_text: str = "") -> Schema:
    return _with_help({"type": "string", "maxLength": max_length}, help_text)


def string_list_schema(min_items: int = 0) -> Schema:
    schema: Schema = {"type": "array", "maxItems": fields.MAX_ITEMS, "items": string_schema()}
    if min_items:
        schema["minItems"] = min_items
    return schema


def object_schema(properties: dict[str, Schema], required: list[str] | None = None,
                  rules: list[dict[str, str]] | None = None, help_text: str = "") -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if rules:
        schema["x-kubernetes-validations"] = rules
    return _with_help(schema, help_text)


# ---- atomic object leaves --------------------------------------------------------------------

def port_ref_schema() -> Schema:
    return {
        "x-kubernetes-int-or-string": True, "maxLength": MAX_PORT_NAME,
        "x-kubernetes-validations": [_rule(
            "type(self) == int ? (self >= 1 && self <= 65535) : "
            f"(size(self) <= {MAX_PORT_NAME} && "
            f"self.matches({_cel_string(_anchored(_bare(formats.LABEL_NAME_RE)))}))",
            "must be a port number (1-65535) or a port name")],
    }


def handler_schema(help_text: str) -> Schema:
    kinds = fields.HANDLER_KINDS
    count = " + ".join(f"(has(self.{k}) ? 1 : 0)" for k in kinds)
    header = object_schema({"name": string_schema(), "value": string_schema()},
                           required=["name", "value"])
    return object_schema({
        "exec": object_schema({"command": string_list_schema(min_items=1)}, ["command"]),
        "httpGet": object_schema({
            "path": string_schema(), "port": port_ref_schema(), "host": string_schema(),
            "scheme": {"type": "string", "enum": ["HTTP", "HTTPS"]},
            "httpHeaders": {"type": "array", "maxItems": fields.MAX_ITEMS, "items": header},
        }, ["port"]),
        "tcpSocket": object_schema({"port": port_ref_schema(), "host": string_schema()},
                                   ["port"]),
        "sleep": object_schema({"seconds": {"type": "integer", "minimum": 0,
                                            "format": "int64"}}, ["seconds"]),
    }, rules=[_rule(f"{count} == 1", f"must set exactly one of {', '.join(kinds)}")],
        help_text=help_text + " (a core/v1 LifecycleHandler)")


def _atomic_schema(leaf: fields.Leaf) -> Schema:
    if leaf.atomic == "statsMatcher":
        return object_schema({key: string_list_schema() for key in fields.STATS_KEYS},
                             help_text=leaf.help)
    if leaf.atomic == "keyProvider":
        cryptomb = object_schema({
            "pollDelay": duration_schema("how long to wait to fill a buffer", minimum="1ms"),
            "fallback": {"type": "boolean"},
        }, help_text="Intel Multi-Buffer crypto")
        return object_schema({"cryptomb": cryptomb}, ["cryptomb"], help_text=leaf.help)
    if leaf.atomic == "handler":
        return handler_schema(leaf.help)
    if leaf.atomic == "drainAgent":
        return object_schema({
            "enabled": {"type": "boolean"},
            "minDrainDuration": duration_schema("drain at least this long"),
            "image": string_schema(help_text="image holding meshcfg-drain"),
        }, ["enabled"], help_text=leaf.help)
    raise ValueError(f"no schema for atomic leaf {leaf.path} ({leaf.atomic})")


def leaf_schema(leaf: fields.Leaf) -> Schema:
    kind = leaf.kind
    if kind == "quantity":
        return quantity_schema(leaf.help)
    if kind == "int":
        return _with_help({"type": "integer", "minimum": 0,
                           "maximum": fields.MAX_CONCURRENCY}, leaf.help)
    if kind == "bool":
        return _with_help({"type": "boolean"}, leaf.help)
    if kind == "enum":
        return _with_help({"type": "string", "enum": list(formats.LOG_LEVELS)}, leaf.help)
    if kind == "componentLog":
        return _with_help({
            "type": "string", "maxLength": MAX_COMPONENT_LOG,
            "x-kubernetes-validations": [_rule(
                f"self.replace(' ', '').matches('{COMPONENT_LOG_PATTERN}')",
                "must be component:level pairs such as misc:error,upstream:debug "
                f"(levels: {', '.join(formats.LOG_LEVELS)})")],
        }, leaf.help)
    if kind == "duration":
        return duration_schema(leaf.help)
    if kind == "ports":
        return ports_schema(leaf.help, leaf.include)
    if kind == "cidrs":
        return cidrs_schema(leaf.help, leaf.include)
    if kind == "object":
        return _atomic_schema(leaf)
    raise ValueError(f"no schema for leaf kind {kind!r} ({leaf.path})")


def metadata_schema() -> Schema:
    env = _cel_string(_anchored(_bare(formats.ENV_NAME_RE)))
    return {
        "description": "extra proxy environment (ProxyConfig proxyMetadata), merged key by key",
        "type": "object", "maxProperties": formats.MAX_METADATA_KEYS,
        "additionalProperties": string_schema(MAX_METADATA_VALUE),
        "x-kubernetes-validations": [
            _rule(f"self.all(k, size(k) <= {fields.MAX_STRING} && k.matches({env}))",
                  "keys must be environment variable names such as ISTIO_META_FOO"),
            _rule("!('ISTIO_META_DNS_CAPTURE' in self)",
                  "ISTIO_META_DNS_CAPTURE is not allowed here: set spec.proxy.dnsCapture"),
        ],
    }


def selector_schema() -> Schema:
    match_labels: Schema = {
        "type": "object", "minProperties": 1, "maxProperties": formats.MAX_LABELS,
        "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_VALUE,
                                 "pattern": formats.LABEL_VALUE_RE.pattern},
        "x-kubernetes-validations": [_rule(
            f"self.all(k, k.matches({_cel_string(LABEL_KEY_PATTERN)}) && "
            "k.indexOf('/') <= 253)",
            "keys must be label keys such as app or example.com/tier")],
    }
    return object_schema(
        {"matchLabels": match_labels}, ["matchLabels"],
        help_text="pods of this namespace whose labels contain all of matchLabels; "
                  "absent = the whole namespace")


CONTAINER_HELP = {
    "proxy": "the istio-proxy sidecar container",
    "init": "the istio-init container",
    "resources": "CPU and memory (Kubernetes quantities)",
    "requests": "resource requests",
    "limits": "resource limits",
    "traffic": "traffic capture, in Istio annotation syntax: comma-separated, '*' = all",
    "lifecycle": "start-up and termination of the sidecar",
}


def _container_schema(prefix: str) -> Schema:
    properties: dict[str, Schema] = {}
    for key in fields.OBJECTS[prefix]:
        path = f"{prefix}.{key}" if prefix else key
        if path == fields.METADATA_PATH:
            properties[key] = metadata_schema()
        elif path in fields.LEAF_BY_PATH:
            properties[key] = leaf_schema(fields.LEAF_BY_PATH[path])
        else:
            properties[key] = _container_schema(path)
    schema: Schema = {"type": "object", "properties": properties}
    last = prefix.rsplit(".", 1)[-1]
    if last in CONTAINER_HELP:
        schema = {"description": CONTAINER_HELP[last], **schema}
    if prefix == "lifecycle":
        schema["x-kubernetes-validations"] = [_rule(
            "!(has(self.preStop) && has(self.drainAgent))",
            "preStop and drainAgent are mutually exclusive")]
    return schema


def spec_schema() -> Schema:
    spec = _container_schema("")
    spec["properties"] = {
        "selector": selector_schema(),
        "precedence": {"description": "layer order (only read on the global object)",
                       "type": "string", "enum": list(formats.PRECEDENCES)},
        **spec["properties"],
    }
    spec["description"] = "sidecar settings of this scope (see SPEC section 1)"
    return spec


def crd() -> dict[str, Any]:
    schema = {
        "description": "Scoped Istio sidecar settings: global in the mesh root namespace "
                       "without a selector, namespace-wide elsewhere, per workload with a "
                       "selector. See `kubectl meshcfg explain`.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
        },
    }
    columns = [
        {"name": "Selector", "type": "string", "jsonPath": ".spec.selector.matchLabels",
         "description": "matchLabels; empty = namespace (or global in the root namespace)"},
        {"name": "Precedence", "type": "string", "jsonPath": ".spec.precedence",
         "priority": 1},
        {"name": "Drain", "type": "string",
         "jsonPath": ".spec.lifecycle.terminationDrainDuration", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME,
                     "labels": {"app.kubernetes.io/name": "meshcfg"}},
        "spec": {
            "group": API_GROUP,
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL,
                      "singular": SINGULAR, "shortNames": SHORT_NAMES,
                      "categories": ["istio-io", "meshcfg"]},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": schema},
                "additionalPrinterColumns": columns,
            }],
        },
    }


def render() -> str:
    header = ("# Generated by `python -m kubectl_meshcfg.core.crd` (scripts/gen-crd) from the leaf\n"
              "# registry in kubectl_meshcfg/core/fields.py. Do not edit by hand.\n")
    return header + yaml.safe_dump(crd(), sort_keys=False, allow_unicode=True, width=100)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
