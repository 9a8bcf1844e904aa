"""The generated CRD: committed file up to date, structural, bounded, CEL only uses functions
the API server has, and every leaf of the registry has its schema node."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from kubectl_meshcfg.core import crd, fields

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

# Functions and macros of the Kubernetes CEL environment for CRD validation rules (CEL
# standard definitions, the strings extension, and the Kubernetes list, regex, quantity,
# IP/CIDR libraries), as documented for Kubernetes 1.31+.
SERVER_FUNCTIONS = {
    # CEL standard functions and macros
    "has", "size", "matches", "contains", "startsWith", "endsWith", "all", "exists",
    "exists_one", "map", "filter", "int", "uint", "double", "string", "bytes", "bool",
    "duration", "timestamp", "type", "dyn",
    # strings extension
    "replace", "split", "trim", "indexOf", "lastIndexOf", "lowerAscii", "upperAscii",
    "substring", "charAt", "join",
    # Kubernetes quantity library
    "isQuantity", "quantity", "isInteger", "asInteger", "asApproximateFloat",
    "isGreaterThan", "isLessThan", "compareTo", "add", "sub",
    # Kubernetes IP / CIDR libraries
    "isIP", "ip", "isCIDR", "cidr", "family", "isUnspecified", "isLoopback",
    "containsIP", "containsCIDR", "prefixLength", "masked",
}


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{key}" if path else key)
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def test_committed_manifest_is_generated() -> None:
    committed = (ROOT / crd.MANIFEST_PATH).read_text(encoding="utf-8")
    assert committed == crd.render(), "run scripts/gen-crd and commit the result"
    assert yaml.safe_load(committed) == crd.crd()


def test_names_and_version() -> None:
    doc = crd.crd()
    spec = doc["spec"]
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1"
    assert doc["metadata"]["name"] == "sidecarproxyconfigs.meshcfg.io"
    assert spec["group"] == "meshcfg.io" and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "SidecarProxyConfig"
    assert spec["names"]["plural"] == "sidecarproxyconfigs"
    assert spec["names"]["shortNames"] == ["spc"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert "subresources" not in version
    assert [c["name"] for c in version["additionalPrinterColumns"]][-1] == "Age"


def test_schema_is_structural() -> None:
    for path, node in walk(SCHEMA):
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node and "anyOf" not in node, path
        else:
            assert node.get("type") in ("object", "array", "string", "integer", "boolean"), path
            assert "anyOf" not in node and "oneOf" not in node and "allOf" not in node, path
        if "properties" in node:
            assert node["type"] == "object" and "additionalProperties" not in node, path
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), path
        for name in node.get("required", []):
            assert name in node["properties"], (path, name)
    assert SCHEMA["properties"]["metadata"] == {"type": "object"}


def test_every_string_list_and_map_is_bounded() -> None:
    for path, node in walk(SCHEMA):
        if path in ("apiVersion", "kind"):
            continue
        kind = node.get("type")
        if kind == "string":
            assert "maxLength" in node or "enum" in node, path
        if node.get("x-kubernetes-int-or-string"):
            assert node.get("maxLength"), path
        if kind == "array":
            assert "maxItems" in node, path
        if kind == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def node_at(dotted: str) -> dict[str, Any]:
    node: dict[str, Any] = SCHEMA["properties"]["spec"]
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


def test_schema_is_generated_from_the_leaf_registry() -> None:
    for leaf in fields.LEAVES:
        node = node_at(leaf.path)
        assert node.get("description", "").startswith(leaf.help), leaf.path
    leaf_paths = {leaf.path for leaf in fields.LEAVES} | {fields.METADATA_PATH}
    for parent, keys in fields.OBJECTS.items():
        node = node_at(parent) if parent else SCHEMA["properties"]["spec"]
        extra = {"selector", "precedence"} if parent == "" else set()
        assert set(node["properties"]) == set(keys) | extra, parent
        for key in keys:
            path = f"{parent}.{key}" if parent else key
            assert path in leaf_paths or path in fields.OBJECTS, path


def test_include_and_exclude_lists_differ_only_in_star() -> None:
    for leaf in fields.LEAVES:
        if leaf.kind in ("ports", "cidrs"):
            rules = [r["rule"] for r in node_at(leaf.path)["x-kubernetes-validations"]]
            star_rule = rules[0]
            if leaf.include:
                assert "== '*'" in star_rule, leaf.path
            else:
                assert star_rule == "!self.contains('*')", leaf.path


def cel_rules() -> Iterator[tuple[str, dict[str, str]]]:
    for path, node in walk(SCHEMA):
        for rule in node.get("x-kubernetes-validations", []):
            yield path, rule


def _strip_strings(rule: str) -> str:
    return re.sub(r"r?'(?:[^'\\]|\\.)*'", "''", rule)


def test_cel_rules_only_use_server_functions() -> None:
    rules = list(cel_rules())
    assert len(rules) > 40
    used: set[str] = set()
    for path, rule in rules:
        code = _strip_strings(rule["rule"])
        assert code.count("(") == code.count(")"), (path, rule)
        names = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", code))
        assert names <= SERVER_FUNCTIONS, (path, names - SERVER_FUNCTIONS)
        used |= names
        assert rule.get("message") or rule.get("messageExpression"), path
        assert "\n" not in rule["message"], path
    # the libraries the issue asks for are really used
    assert {"isQuantity", "quantity", "isCIDR", "duration", "split", "matches"} <= used


def test_rule_regexes_are_re2_compatible() -> None:
    """No lookarounds or backreferences (Go's regexp is RE2)."""
    for path, rule in cel_rules():
        for literal in re.findall(r"matches\(r?'((?:[^'\\]|\\.)*)'\)", rule["rule"]):
            assert not re.search(r"\(\?[=!<]|\\[1-9]", literal), (path, literal)
            re.compile(literal)
    for path, node in walk(SCHEMA):
        if "pattern" in node:
            assert not re.search(r"\(\?[=!<]|\\[1-9]", node["pattern"]), path


def test_mutual_exclusion_and_minimums_are_in_the_schema() -> None:
    lifecycle = node_at("lifecycle")["x-kubernetes-validations"]
    assert any("preStop" in r["rule"] and "drainAgent" in r["rule"] for r in lifecycle)
    poll = node_at("proxy.privateKeyProvider")["properties"]["cryptomb"]["properties"][
        "pollDelay"]
    assert any("duration('1ms')" in r["rule"] for r in poll["x-kubernetes-validations"])
    concurrency = node_at("proxy.concurrency")
    assert (concurrency["minimum"], concurrency["maximum"]) == (0, fields.MAX_CONCURRENCY)
    metadata = node_at("proxy.proxyMetadata")["x-kubernetes-validations"]
    assert any("ISTIO_META_DNS_CAPTURE" in r["rule"] for r in metadata)
    labels = SCHEMA["properties"]["spec"]["properties"]["selector"]["properties"]["matchLabels"]
    assert labels["minProperties"] == 1
