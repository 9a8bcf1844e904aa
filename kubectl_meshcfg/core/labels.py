"""Kubernetes label selectors as `-l` takes them: `a=b,c!=d,e,!f,g in (x,y),h notin (z)`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import UsageError

_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY_RE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_./]*$")
_VALUE_RE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

Requirement = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class Selector:
    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req(labels) for req in self.requirements)


def parse_selector(text: str) -> Selector:
    return Selector(text, tuple(_requirement(part) for part in _split(text) if part.strip()))


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _requirement(part: str) -> Requirement:
    match = _SET_RE.match(part)
    if match:
        key, op, values = match[1], match[2], {v.strip() for v in match[3].split(",")}
        _check_key(key, part)
        for item in values:
            _check_value(item, part)
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in part:
            key, value = (s.strip() for s in part.split(op, 1))
            _check_key(key, part)
            _check_value(value, part)
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    stripped = part.strip()
    if stripped.startswith("!"):
        key = stripped[1:].strip()
        _check_key(key, part)
        return lambda labels: key not in labels
    _check_key(stripped, part)
    return lambda labels: stripped in labels


def _check_key(key: str, part: str) -> None:
    if not _KEY_RE.match(key):
        raise UsageError(f"invalid label selector {part.strip()!r}")


def _check_value(value: str, part: str) -> None:
    if not _VALUE_RE.match(value) or len(value) > 63:
        raise UsageError(f"invalid label selector {part.strip()!r}: {value!r} is not a label value")
