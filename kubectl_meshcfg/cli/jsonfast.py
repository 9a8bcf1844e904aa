"""Indented JSON for big outputs (`explain -A -o json` on 10,000 pods), fast.

`json.dumps(..., indent=2)` runs CPython's pure-Python encoder: ~10 s for 10,000 explained
pods. Here only the outer levels are laid out in Python; every container two levels into
a document (a field's `{"value", "source", "overridden"}`, a warning), and any container
holding only scalars, is written on one line by the C encoder. The result is the same
JSON value, one field per line:

    {
      "kind": "List",
      "items": [
        {
          "apiVersion": "meshcfg.io/v1alpha1",
          "target": {"kind": "Pod", "namespace": "ai", "name": "svc-a-0"},
          "fields": {
            "proxy.concurrency": {"value": 5, "source": {...}, "overridden": [...]},
"""

from __future__ import annotations

import json
from typing import Any

_compact = json.JSONEncoder(separators=(", ", ": ")).encode
_key = json.JSONEncoder().encode
INLINE_DEPTH = 2


def dumps(obj: Any) -> str:
    parts: list[str] = []
    _Writer(parts).write(obj, 0, "")
    parts.append("\n")
    return "".join(parts)


def _flat(obj: dict[str, Any] | list[Any]) -> bool:
    values = obj.values() if isinstance(obj, dict) else obj
    return not any(isinstance(v, dict | list) for v in values)


class _Writer:
    def __init__(self, parts: list[str]):
        self.parts = parts
        # The resolver shares one field object between the targets of a stack: encode each
        # object once (keyed by id; every object stays alive until the dump is done).
        self.done: dict[int, str] = {}

    def inline(self, obj: Any) -> str:
        text = self.done.get(id(obj))
        if text is None:
            text = self.done[id(obj)] = _compact(obj)
        return text

    def write(self, obj: Any, depth: int, pad: str) -> None:
        parts = self.parts
        if not isinstance(obj, dict | list) or not obj or depth >= INLINE_DEPTH or _flat(obj):
            parts.append(self.inline(obj) if isinstance(obj, dict | list) else _compact(obj))
            return
        inner = pad + "  "
        if isinstance(obj, list):
            parts.append("[")
            for i, item in enumerate(obj):
                parts.append("\n" + inner if i == 0 else ",\n" + inner)
                self.write(item, depth + 1, inner)
            parts.append("\n" + pad + "]")
            return
        if depth + 1 >= INLINE_DEPTH:
            inline = self.inline
            parts.append("{\n" + ",\n".join(inner + _key(k) + ": " + inline(v)
                                              for k, v in obj.items()) + "\n" + pad + "}")
            return
        is_list = obj.get("kind") == "List"
        parts.append("{")
        for i, (key, value) in enumerate(obj.items()):
            parts.append(("\n" if i == 0 else ",\n") + inner + _key(key) + ": ")
            if is_list and key == "items" and isinstance(value, list) and value:
                # A List's items are documents of their own: lay each out from depth 0.
                parts.append("[")
                deeper = inner + "  "
                for j, item in enumerate(value):
                    parts.append(("\n" if j == 0 else ",\n") + deeper)
                    self.write(item, 0, deeper)
                parts.append("\n" + inner + "]")
            else:
                self.write(value, depth + 1, inner)
        parts.append("\n" + pad + "}")
