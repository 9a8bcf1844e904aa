"""kubectl's JSONPath templates (`-o jsonpath=...`) and custom columns
(`-o custom-columns=...`): text with `{expression}` actions, `{range ...}{end}`, fields
(`.a.b`, `['a.b']`, `a\\.b`), `..` recursive descent, `[*]`, `[i]`, `[i:j]`, `.*`, filters
`[?(@.a == "x")]`, and quoted text. Missing keys print nothing, as with kubectl's default
--allow-missing-template-keys=true."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import MeshcfgError

Step = tuple[str, Any]       # ("key", name) | ("index", i) | ("slice", (a, b)) | ("all", None)
_NAME = re.compile(r"(?:\\.|[^.\[\]\s=!<>()])+")
_FILTER = re.compile(r"\?\(@(?P<path>[^=!<>)]*?)\s*(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.+?))?\s*\)$")


class TemplateError(MeshcfgError):
    pass


@dataclass(frozen=True)
class Node:
    kind: str                 # "text" | "expr" | "range"
    value: Any                # text, steps, (steps, children)


def parse(template: str) -> list[Node]:
    return _parse_nodes(template, 0, top=True)[0]


def _parse_nodes(template: str, pos: int, top: bool) -> tuple[list[Node], int]:
    nodes: list[Node] = []
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            nodes.append(Node("text", template[pos:]))
            return nodes, len(template)
        if start > pos:
            nodes.append(Node("text", template[pos:start]))
        end = _closing(template, start)
        action = template[start + 1:end].strip()
        pos = end + 1
        if action == "end":
            if top:
                raise TemplateError(f"error: jsonpath template {template!r}: 'end' without 'range'")
            return nodes, pos
        if action.startswith("range "):
            children, pos = _parse_nodes(template, pos, top=False)
            nodes.append(Node("range", (parse_expression(action[6:].strip()), children)))
        elif action[:1] in ('"', "'"):
            nodes.append(Node("text", _unquote(action)))
        else:
            nodes.append(Node("expr", parse_expression(action)))
    if not top:
        raise TemplateError("error: jsonpath template: 'range' without 'end'")
    return nodes, pos


def _closing(template: str, start: int) -> int:
    quote = ""
    for i in range(start + 1, len(template)):
        char = template[i]
        if quote:
            quote = "" if char == quote and template[i - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char == "}":
            return i
    raise TemplateError(f"error: jsonpath template {template!r}: unclosed action")


def _unquote(text: str) -> str:
    body = text[1:-1] if len(text) >= 2 and text[-1] == text[0] else text[1:]
    return body.replace("\\n", "\n").replace("\\t", "\t").replace('\\"', '"')


def parse_expression(text: str) -> list[Step]:
    """`.a.b[0]['c.d'][*]..e` → steps."""
    steps: list[Step] = []
    pos = 1 if text.startswith("$") else 0
    if pos == 0 and text and text[0] not in ".[":
        text, pos = "." + text, 0
    while pos < len(text):
        if text.startswith("..", pos):
            steps.append(("descend", None))
            pos += 1
            continue
        char = text[pos]
        if char == ".":
            if text.startswith(".*", pos):
                steps.append(("all", None))
                pos += 2
                continue
            match = _NAME.match(text, pos + 1)
            if match is None:
                if pos + 1 == len(text):     # `{.}`: the object itself
                    break
                raise TemplateError(f"error: bad jsonpath expression {text!r} at {pos}")
            steps.append(("key", match.group().replace("\\.", ".")))
            pos = match.end()
        elif char == "[":
            end = text.find("]", pos)
            if end < 0:
                raise TemplateError(f"error: bad jsonpath expression {text!r}: unclosed [")
            steps += _bracket(text[pos + 1:end].strip(), text)
            pos = end + 1
        else:
            raise TemplateError(f"error: bad jsonpath expression {text!r} at {pos}")
    return steps


def _bracket(inner: str, text: str) -> list[Step]:
    if inner == "*":
        return [("all", None)]
    if inner[:1] in "\"'":
        # kubectl splits a quoted key at unescaped dots too: ['a.b'] is a.b, ['a\\.b'] one key
        parts = re.split(r"(?<!\\)\.", _unquote(inner))
        return [("key", part.replace("\\.", ".")) for part in parts]
    if inner.startswith("?"):
        match = _FILTER.match(inner)
        if match is None:
            raise TemplateError(f"error: bad jsonpath filter {inner!r} in {text!r}")
        value = match.group("value")
        literal = _unquote(value) if value and value[0] in "\"'" else _number(value)
        return [("filter", (parse_expression(match.group("path") or "."), match.group("op"), literal))]
    try:
        if ":" in inner:
            a, b = (part.strip() for part in inner.split(":", 1))
            return [("slice", (int(a) if a else None, int(b) if b else None))]
        return [("index", int(inner))]
    except ValueError:
        raise TemplateError(f"error: bad jsonpath index [{inner}] in {text!r}") from None


def _number(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def evaluate(steps: list[Step], root: Any) -> list[Any]:
    values = [root]
    for step in steps:
        values = [out for value in values for out in _step(step, value)]
    return values


def _step(step: Step, value: Any) -> Iterator[Any]:
    kind, arg = step
    if kind == "key":
        if isinstance(value, Mapping) and arg in value:
            yield value[arg]
    elif kind == "index":
        if isinstance(value, list) and -len(value) <= arg < len(value):
            yield value[arg]
    elif kind == "slice":
        if isinstance(value, list):
            yield from value[arg[0]:arg[1]]
    elif kind == "all":
        if isinstance(value, Mapping):
            yield from value.values()
        elif isinstance(value, list):
            yield from value
    elif kind == "descend":
        yield from _descendants(value)
    elif kind == "filter":
        yield from (item for item in (value if isinstance(value, list) else [])
                    if _matches(arg, item))


def _descendants(value: Any) -> Iterator[Any]:
    yield value
    children = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    for child in children:
        yield from _descendants(child)


def _matches(arg: tuple[list[Step], str | None, Any], item: Any) -> bool:
    path, op, literal = arg
    found = evaluate(path, item)
    if op is None:
        return bool(found)
    if not found:
        return False
    left = found[0]
    try:
        return bool({"==": left == literal, "!=": left != literal, "<": left < literal,
                     ">": left > literal, "<=": left <= literal, ">=": left >= literal}[op])
    except TypeError:
        return False


def text_of(value: Any) -> str:
    """A value as kubectl's JSONPath prints it: strings raw, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def render(nodes: list[Node], data: Any) -> str:
    out: list[str] = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "expr":
            out.append(" ".join(text_of(v) for v in evaluate(node.value, data)))
        else:
            steps, children = node.value
            out += [render(children, item) for item in evaluate(steps, data)]
    return "".join(out)


def go_text(value: Any) -> str:
    """A value as Go's %v prints it, as kubectl's custom columns do: map[k:v], [a b]."""
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    return text_of(value)


def custom_columns(spec: str) -> list[tuple[str, list[Step]]]:
    """`HEADER:.path,HEADER2:{.path}` → [(header, steps)]."""
    columns = []
    for part in spec.split(","):
        header, colon, path = part.partition(":")
        if not colon or not header or not path:
            raise TemplateError(f"error: custom-columns format {spec!r}: expected HEADER:JSONPATH, "
                                f"got {part!r}")
        path = path.strip()
        if path.startswith("{") and path.endswith("}"):
            path = path[1:-1]
        columns.append((header, parse_expression(path)))
    return columns


def column_rows(columns: list[tuple[str, list[Step]]], items: list[Any]) -> list[list[str]]:
    rows = [[header for header, _ in columns]]
    for item in items:
        rows.append([",".join(go_text(v) for v in evaluate(steps, item)) or "<none>"
                     for _, steps in columns])
    return rows
