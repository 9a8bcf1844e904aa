"""Bounded, decodable input: what kubectl's decoders refuse or repair, checked before a
document becomes Python objects.

- Bytes become text as kubectl's resource builder decodes them (`unicode.BOMOverride`
  over a UTF-8 decoder): a UTF-8 or UTF-16 byte-order mark picks the encoding; bytes that
  are not UTF-8 become U+FFFD. A U+FFFD that reaches a value is refused here, naming the
  field, instead of being sent.
- Aliases are limited as go-yaml v2 limits them for sigs.k8s.io/yaml ("document contains
  excessive aliasing"): the expanded size is counted on the node graph, so a 1 KB alias
  bomb is refused in linear time, before it is expanded.
- Nesting depth, one document's size and one value's length are bounded.
- Booleans spelled the YAML 1.1 way (`yes`, `n`, `On`, `True`) are remembered by field
  path, so an error can say what the user wrote and how kubectl reads it.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_FILE = 32 * 1024 * 1024        # bytes read from one file or stdin
MAX_DOCUMENT = 3 * 1024 * 1024     # the API server's request body limit (3 MiB)
MAX_VALUE = 1024 * 1024            # one scalar: a ConfigMap's whole data fits in 1 MiB
MAX_DEPTH = 100                    # nesting; kubectl allows more, no manifest needs it
MAX_SHOWN = 60                     # characters of a value quoted in an error line
BOOL_TAG = "tag:yaml.org,2002:bool"

# go-yaml v2 decode.go: allowedAliasRatio
_ALIAS_LOW, _ALIAS_HIGH = 400_000, 4_000_000


def allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_LOW:
        return 0.99
    if decoded >= _ALIAS_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_LOW) / (_ALIAS_HIGH - _ALIAS_LOW)


class LimitExceeded(Exception):
    """A document breaks a bound; `field` is the dotted path where it was found."""

    def __init__(self, field_path: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field_path, reason


def cut(text: str, limit: int = MAX_SHOWN) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def one_line(text: str) -> str:
    """Control and line-separator characters (a hostile key's \\x1e, U+2028) escaped, so an
    error stays one line on a terminal and for line-splitting readers."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in text)


def decode(data: bytes) -> tuple[str, bool]:
    """(text, whether bytes were replaced by U+FFFD), as kubectl decodes a manifest."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                       (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            text = data[len(bom):].decode(codec, errors="replace")
            return text, "\ufffd" in text
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


@dataclass
class Census:
    """One walk over a composed document (a yaml node graph, aliases shared)."""

    replaced: bool = False
    decoded: int = 1                     # go-yaml counts the document node too
    aliased: int = 0
    sizes: dict[int, int] = field(default_factory=dict)     # id(node) -> expanded count
    active: set[int] = field(default_factory=set)
    spellings: dict[str, str] = field(default_factory=dict)  # field path -> note

    def document(self, node: Any) -> None:
        start, end = node.start_mark, node.end_mark
        if start is not None and end is not None and end.index - start.index > MAX_DOCUMENT:
            raise LimitExceeded("", f"the document is larger than {MAX_DOCUMENT} bytes "
                                    "(the API server's request limit)")
        self.node(node, "", 0)

    def node(self, node: Any, path: str, depth: int) -> int:
        key = id(node)
        if key in self.active:
            raise LimitExceeded(path, "an alias refers to a node that contains it")
        if key in self.sizes:
            return self._alias(self.sizes[key], path)
        if depth > MAX_DEPTH:
            raise LimitExceeded(path, f"is nested deeper than {MAX_DEPTH} levels")
        self.decoded += 1
        self._check_ratio(path)
        self.active.add(key)
        size = 1 + self._children(node, path, depth)
        self.active.discard(key)
        self.sizes[key] = size
        return size

    def _alias(self, size: int, path: str) -> int:
        self.decoded += 1 + size
        self.aliased += size
        self._check_ratio(path)
        return 1 + size

    def _check_ratio(self, path: str) -> None:
        if (self.aliased > 100 and self.decoded > 1000
                and self.aliased / self.decoded > allowed_alias_ratio(self.decoded)):
            raise LimitExceeded(path, "excessive aliasing: the document's aliases expand to "
                                      f"over {self.decoded} values (kubectl refuses it too)")

    def _children(self, node: Any, path: str, depth: int) -> int:
        value = node.value
        if isinstance(value, str):
            self._scalar(node, path)
            return 0
        total = 0
        if value and isinstance(value[0], tuple):
            for key_node, value_node in value:
                total += self.node(key_node, path, depth + 1)
                total += self.node(value_node, _join(path, key_node), depth + 1)
            return total
        for index, item in enumerate(value):
            total += self.node(item, f"{path}[{index}]", depth + 1)
        return total

    def _scalar(self, node: Any, path: str) -> None:
        text: str = node.value
        if len(text) > MAX_VALUE:
            raise LimitExceeded(path, f"the value is {len(text)} characters long; "
                                      f"the limit is {MAX_VALUE}")
        if self.replaced and "\ufffd" in text:
            raise LimitExceeded(path, f"{cut(text)!r} has bytes that are not UTF-8 (kubectl "
                                      "would send U+FFFD); save the file as UTF-8")
        if node.tag == BOOL_TAG and text not in ("true", "false") and not node.style:
            meaning = "true" if text.lower() in ("y", "yes", "on", "true") else "false"
            self.spellings[path] = (f"you wrote {text}, which kubectl reads as the boolean "
                                    f"{meaning}; quote it, \"{text}\", to mean the word")


def _join(path: str, key_node: Any) -> str:
    key = key_node.value if isinstance(key_node.value, str) else "?"
    key = cut(key, MAX_SHOWN)
    return f"{path}.{key}" if path else key


def shown(value: object) -> str:
    """A value as an error line shows it: JSON spellings, strings quoted and cut."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(cut(value))
    if isinstance(value, int | float):
        return cut(repr(value))
    if isinstance(value, Mapping):
        return "an object" if value else "{}"
    if isinstance(value, list):
        return "a list" if value else "[]"
    return cut(repr(value))
