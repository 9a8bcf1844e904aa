"""diff's overlay and comparison, pure: replacement keeps the creation time (conflict order),
new objects come last, warnings that appear count as changes, reach of a change."""

from __future__ import annotations

from typing import Any

from kubectl_meshcfg.core.diffing import affected_namespaces, compare, overlay
from kubectl_meshcfg.core.inventory import Inventory
from kubectl_meshcfg.core.model import Origin, parse_config, parse_target
from kubectl_meshcfg.core.resolve import Resolver

ORIGIN = Origin("test.yaml", 1)


def cfg(name: str, ns: str, spec: dict[str, Any], created: str | None = None,
        order: int = 0) -> Any:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if created:
        meta["creationTimestamp"] = created
    return parse_config({"apiVersion": "meshcfg.io/v1alpha1", "kind": "SidecarProxyConfig",
                         "metadata": meta, "spec": spec}, ORIGIN, ns, order)


def pod(name: str, ns: str, labels: dict[str, str]) -> Any:
    return parse_target({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": name, "namespace": ns, "labels": labels}},
                        ORIGIN, ns)


def run(before: Inventory, change: Inventory) -> dict[str, Any]:
    after = overlay(before, change)
    return compare(before, after, Resolver(before.configs).resolve,
                   Resolver(after.configs).resolve, None)


SELECT = {"selector": {"matchLabels": {"app": "a"}}}


def test_replacement_keeps_age_and_reports_fields() -> None:
    old = cfg("old", "ns", {**SELECT, "proxy": {"logLevel": "info"}}, "2026-01-01T00:00:00Z")
    newer = cfg("newer", "ns", {**SELECT, "proxy": {"logLevel": "error"}},
                "2026-02-01T00:00:00Z")
    before = Inventory(configs=[old, newer], targets=[pod("p", "ns", {"app": "a"})])
    change = Inventory(configs=[cfg("old", "ns", {**SELECT, "proxy": {"logLevel": "debug"}})])
    result = run(before, change)
    [item] = result["items"]
    assert [(f["field"], f["before"]["value"], f["after"]["value"]) for f in item["fields"]] == [
        ("proxy.logLevel", "info", "debug")]
    assert item["fields"][0]["after"]["source"]["name"] == "old"     # still the oldest
    assert item["warnings"] == {"added": [], "removed": []}
    assert result["summary"] == {"targets": 1, "changed": 1, "fields": 1}


def test_new_object_loses_and_adds_a_warning() -> None:
    old = cfg("old", "ns", {**SELECT, "proxy": {"concurrency": 4}}, "2026-01-01T00:00:00Z")
    before = Inventory(configs=[old], targets=[pod("p", "ns", {"app": "a"})])
    change = Inventory(configs=[cfg("aaa", "ns", {**SELECT, "proxy": {"concurrency": 1}})])
    [item] = run(before, change)["items"]
    assert item["fields"] == []
    assert [w["code"] for w in item["warnings"]["added"]] == ["WorkloadConflict"]


def test_no_change() -> None:
    same = cfg("c", "ns", {"proxy": {"concurrency": 2}})
    before = Inventory(configs=[same], targets=[pod("p", "ns", {})])
    assert run(before, Inventory(configs=[same]))["items"] == []


def test_reach() -> None:
    assert affected_namespaces(Inventory(configs=[cfg("g", "istio-system", {})]),
                               "istio-system") is None
    assert affected_namespaces(Inventory(configs=[cfg("w", "istio-system", SELECT),
                                                  cfg("n", "ns", {})]),
                               "istio-system") == {"istio-system", "ns"}
