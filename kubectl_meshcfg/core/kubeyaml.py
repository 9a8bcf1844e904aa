"""YAML as kubectl reads it, so `--local` validation sees the values the API server sees.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, whose scalar rules (go-yaml v2) differ
from PyYAML's YAML 1.1 rules, e.g.:

=============  ==========================  ===========================
plain scalar   PyYAML                      kubectl -> API server
=============  ==========================  ===========================
``y``, ``N``   string                      boolean
``1e3``        string "1e3"                number 1000
``1e-3``       string "1e-3"               number 0.001
``0o17``       string "0o17"               integer 15
``08``         error-free string "08"      number 8
``12:30``      integer 750 (base 60)       string "12:30"
``2001-12-14`` datetime.date               string "2001-12-14"
``2.0``        float 2.0                   integer 2 (JSON has no 2.0)
=============  ==========================  ===========================

`Loader` resolves plain scalars the go-yaml v2 way and turns floats with an integral value
into ints (JSON encodes them without a fraction, so the server sees an integer). Mapping keys
that are not strings become the strings sigs.k8s.io/yaml would make of them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import yaml

from .bounded import Census, LimitExceeded

_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MERGE = "tag:yaml.org,2002:merge"

_TRUE = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_NULL = {"", "~", "null", "Null", "NULL"}
_SPECIAL_FLOATS = {
    **{s: math.nan for s in (".nan", ".NaN", ".NAN")},
    **{s: math.inf for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: -math.inf for s in ("-.inf", "-.Inf", "-.INF")},
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_GO_FLOAT = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_INT64 = (-(2**63), 2**63 - 1)
_MAX_EXACT_JSON = 1e21          # Go's JSON encoder switches to exponent form from here


def go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64) (or ParseUint for the unsigned range), else None."""
    sign, body = 1, text
    if body[:1] in "+-":
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    lower = body.lower()
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if lower.startswith(prefix):
            digits, number_base = body[2:], base
            break
    else:
        if len(body) > 1 and body[0] == "0":
            digits, number_base = body[1:], 8
        else:
            digits, number_base = body, 10
    if not digits or not all(c.isascii() and c.isalnum() for c in digits):
        return None
    try:
        value = sign * int(digits, number_base)
    except ValueError:
        return None
    if _INT64[0] <= value <= _INT64[1] or (text[:1] not in "+-" and value < 2**64):
        return value
    return None


def resolve_plain(text: str) -> tuple[str, Any]:
    """(tag, value) of an untagged plain scalar, as go-yaml v2's resolve()."""
    if text in _NULL:
        return NULL, None
    if text in _TRUE:
        return BOOL, True
    if text in _FALSE:
        return BOOL, False
    if text in _SPECIAL_FLOATS:
        return FLOAT, _SPECIAL_FLOATS[text]
    if text == "<<":
        return MERGE, text
    first = text[0]
    if first == ".":
        if _GO_FLOAT.fullmatch(text):
            return FLOAT, float(text)
        return STR, text
    if first.isdigit() and first.isascii() or first in "+-":
        # (a timestamp would come first: go-yaml leaves it a string for interface{} values)
        plain = text.replace("_", "")
        number = go_parse_int(plain)
        if number is not None:
            return INT, number
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            return FLOAT, float(plain)
    return STR, text


def _json_number(value: float) -> int | float:
    """What a float64 becomes after JSON: integral values below 1e21 are integers."""
    if math.isfinite(value) and value.is_integer() and abs(value) < _MAX_EXACT_JSON:
        return int(value)
    return value


def _key_text(key: Any) -> Any:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        number = _json_number(key)
        return str(number) if isinstance(number, int) else repr(number)
    if key is None:
        return "null"
    return key


class Refused(LimitExceeded, yaml.YAMLError):
    """A bound of `bounded.Census` broken; also a YAMLError, so that every caller that
    handles invalid YAML (annotations, the mesh config) handles this too."""


class Loader(_BASE):  # type: ignore[misc]
    """A safe loader that reads scalars the way kubectl does (see the module docstring);
    each document passes `bounded.Census` (aliases, depth, sizes) before it is built."""

    replaced = False            # the text had bytes that were not UTF-8 (see bounded.decode)
    census: Census | None = None

    def construct_document(self, node: Any) -> Any:
        self.census = Census(replaced=self.replaced)
        try:
            self.census.document(node)
        except LimitExceeded as limit:
            raise Refused(limit.field, limit.reason) from None
        return super().construct_document(node)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return resolve_plain(value)[0]
        return str(super().resolve(kind, value, implicit))

    def construct_go_int(self, node: yaml.ScalarNode) -> int | float:
        text = str(self.construct_scalar(node))
        number = go_parse_int(text.replace("_", ""))
        if number is not None:
            return number
        return self.construct_go_float(node)

    def construct_go_float(self, node: yaml.ScalarNode) -> int | float:
        text = str(self.construct_scalar(node))
        if text in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[text]
        plain = text.replace("_", "")
        if not _YAML_STYLE_FLOAT.fullmatch(plain):
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {text!r} as a number", node.start_mark)
        return _json_number(float(plain))

    def construct_go_bool(self, node: yaml.ScalarNode) -> bool:
        text = str(self.construct_scalar(node))
        return text in _TRUE or text.lower() == "true"

    def construct_go_mapping(self, node: yaml.MappingNode) -> dict[Any, Any]:
        mapping = self.construct_mapping(node, deep=True)
        return {_key_text(k): v for k, v in mapping.items()}


Loader.add_constructor(INT, Loader.construct_go_int)
Loader.add_constructor(FLOAT, Loader.construct_go_float)
Loader.add_constructor(BOOL, Loader.construct_go_bool)
Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_go_mapping)


def documents(text: str, replaced: bool = False) -> Iterator[tuple[Any, Census]]:
    """Each document with its census (YAML 1.1 spellings by field path); raises
    yaml.YAMLError or bounded.LimitExceeded."""
    loader = Loader(text)
    loader.replaced = replaced
    try:
        while loader.check_data():
            doc = loader.get_data()
            assert loader.census is not None
            yield doc, loader.census
    finally:
        loader.dispose()


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=Loader))  # noqa: S506 (a SafeLoader)


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader)


class Dumper(yaml.SafeDumper):
    """YAML that go-yaml v2 reads back as written: a string it would resolve as anything
    but a string (`y`, `on`, `0x1F`, `1_000`) is quoted."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        node = super().represent_str(data)
        if node.style is None and data and resolve_plain(data)[0] != STR:
            node.style = "'"
        return node


Dumper.add_representer(str, Dumper.represent_str)


def dump(data: Any) -> str:
    return str(yaml.dump(data, Dumper=Dumper, sort_keys=True, default_flow_style=False))
