"""The fast indented JSON writer gives the same JSON value as json.dumps, one field per line."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubectl_meshcfg.cli.jsonfast import dumps

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(
    allow_nan=False, allow_infinity=False)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=20)


@given(values)
def test_same_value_as_json_dumps(value: Any) -> None:
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


@given(st.lists(values, max_size=3))
def test_list_documents(items: list[Any]) -> None:
    doc = {"kind": "List", "items": items}
    assert json.loads(dumps(doc)) == doc


def test_layout_one_field_per_line() -> None:
    shared = {"value": 2, "source": {"layer": "default"}, "overridden": []}
    doc = {"kind": "List", "items": [
        {"target": {"kind": "Pod", "name": "a"}, "fields": {"x": shared, "y": shared},
         "warnings": []}]}
    assert dumps(doc) == (
        '{\n'
        '  "kind": "List",\n'
        '  "items": [\n'
        '    {\n'
        '      "target": {"kind": "Pod", "name": "a"},\n'
        '      "fields": {\n'
        '        "x": {"value": 2, "source": {"layer": "default"}, "overridden": []},\n'
        '        "y": {"value": 2, "source": {"layer": "default"}, "overridden": []}\n'
        '      },\n'
        '      "warnings": []\n'
        '    }\n'
        '  ]\n'
        '}\n')
