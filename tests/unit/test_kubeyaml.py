"""kubectl_meshcfg.core.kubeyaml reads plain scalars as kubectl does (the values in
tests/corpus/yaml-scalars.yaml were checked against a real kubectl + kube-apiserver by
tests/cluster/test_crd_server_validation.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from corpuslib import CORPUS

from kubectl_meshcfg.core import kubeyaml

SCALARS: dict[str, Any] = yaml.safe_load(
    (CORPUS / "yaml-scalars.yaml").read_text(encoding="utf-8"))["expect"]


@pytest.mark.parametrize(("raw", "expected"), list(SCALARS.items()), ids=list(SCALARS))
def test_plain_scalar_reads_as_kubectl_sends_it(raw: str, expected: Any) -> None:
    value = kubeyaml.load(f"x: {raw}\n")["x"]
    assert value == expected and type(value) is type(expected), (raw, value)


@pytest.mark.parametrize("raw", ["'y'", '"1e3"', "'12:30'", '"08"'])
def test_quoted_scalars_stay_strings(raw: str) -> None:
    assert kubeyaml.load(f"x: {raw}\n")["x"] == raw[1:-1]


def test_explicit_tags_and_specials() -> None:
    assert kubeyaml.load('x: !!int "5"')["x"] == 5
    assert kubeyaml.load('x: !!str 5')["x"] == "5"
    assert kubeyaml.load('x: !!float "2"')["x"] == 2
    assert math.isinf(kubeyaml.load("x: .inf")["x"])
    with pytest.raises(yaml.YAMLError):
        kubeyaml.load('x: !!int "abc"')


def test_non_string_keys_become_strings() -> None:
    assert kubeyaml.load("{1: a, 2.0: c, 1.5: d, false: e}") == {
        "1": "a", "2": "c", "1.5": "d", "false": "e"}


def test_documents_and_merge_keys() -> None:
    assert kubeyaml.load_all("a: 1\n---\n- y\n---\n") == [{"a": 1}, [True], None]
    assert kubeyaml.load("base: &b {x: 1}\nother: {<<: *b, z: 2}")["other"] == {"x": 1, "z": 2}


def test_a_key_named_y_is_true_as_in_kubectl() -> None:
    assert kubeyaml.load("y: 1") == {"true": 1}


def test_mesh_config_is_read_as_istiod_reads_it() -> None:
    from kubectl_meshcfg.core.model import Origin, parse_mesh_config

    doc = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "istio", "namespace": "istio-system"},
           "data": {"mesh": "defaultConfig:\n  concurrency: 2.0\n"
                            "  holdApplicationUntilProxyStarts: y\n"}}
    mesh = parse_mesh_config(doc, Origin("mesh.yaml", 1), "istio-system")
    assert mesh.default_config == {"concurrency": 2, "holdApplicationUntilProxyStarts": True}
