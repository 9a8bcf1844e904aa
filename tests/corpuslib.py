"""The validation corpus (tests/corpus/): boundary values and whole bad documents.

`value_cases()` expands tests/corpus/values.yaml into one `Case` per (block, path, value):
a complete SidecarProxyConfig document with that value placed at that path, whether it is
good, and the field path a rejection must name. `bad_documents()` lists the files of
tests/corpus/bad-documents/ with the fragments their error line must contain (the
`# error:` comment lines at the top of each file).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CORPUS = Path(__file__).resolve().parent / "corpus"
VALUES = CORPUS / "values.yaml"
BAD_DOCUMENTS = CORPUS / "bad-documents"


class _Loader(yaml.SafeLoader):
    """SafeLoader plus the corpus tags !repeat, !join and !keys."""


def _repeat(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.SequenceNode)
    item, count, separator = loader.construct_sequence(node, deep=True)
    if isinstance(item, list):
        return [copy.deepcopy(x) for _ in range(count) for x in item]
    return str(separator).join([str(item)] * int(count))


def _join(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.SequenceNode)
    return "".join(str(part) for part in loader.construct_sequence(node, deep=True))


def _keys(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    assert isinstance(node, yaml.SequenceNode)
    prefix, count, value = loader.construct_sequence(node, deep=True)
    return {f"{prefix}{i}": value for i in range(int(count))}


_Loader.add_constructor("!repeat", _repeat)
_Loader.add_constructor("!join", _join)
_Loader.add_constructor("!keys", _keys)


def shown(value: Any) -> str:
    """A value as a short test id part."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Case:
    block: str            # format name in values.yaml
    path: str             # where the value sits, dotted from the document root
    value: Any
    good: bool
    index: int            # position in its good/bad list
    document: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.block}:{'good' if self.good else 'bad'}{self.index}:{self.path}={shown(self.value)}"

    def with_name(self, name: str) -> dict[str, Any]:
        """The document under another metadata.name (unless the case is about the name)."""
        doc = copy.deepcopy(self.document)
        if self.path != "metadata.name" and isinstance(doc.get("metadata"), dict):
            doc["metadata"]["name"] = name
        return doc


def load_values() -> dict[str, Any]:
    with VALUES.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    assert isinstance(data, dict)
    return data


def place(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = copy.deepcopy(value)
    return doc


def value_cases() -> list[Case]:
    data = load_values()
    base = data["base"]
    cases = []
    for block, spec in data["formats"].items():
        for path in spec["paths"]:
            for good in (True, False):
                for index, value in enumerate(spec["good" if good else "bad"] or []):
                    cases.append(Case(block, path, value, good, index,
                                      place(base, path, value)))
    return cases


@dataclass(frozen=True)
class Group:
    """One value of a block placed at every path of the block, in one document (fewer
    documents for the API server; every path must still be named when it is bad)."""

    block: str
    paths: tuple[str, ...]
    value: Any
    good: bool
    index: int
    document: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.block}:{'good' if self.good else 'bad'}{self.index}={shown(self.value)}"

    @property
    def names_object(self) -> bool:
        return "metadata.name" in self.paths


def value_groups() -> list[Group]:
    data = load_values()
    groups = []
    for block, spec in data["formats"].items():
        paths = tuple(spec["paths"])
        for good in (True, False):
            for index, value in enumerate(spec["good" if good else "bad"] or []):
                doc = data["base"]
                for path in paths:
                    doc = place(doc, path, value)
                groups.append(Group(block, paths, value, good, index, doc))
    return groups


@dataclass(frozen=True)
class BadDocument:
    path: Path
    fragments: tuple[str, ...]    # each must appear in the one error line

    @property
    def id(self) -> str:
        return self.path.name


_ERROR_LINE = re.compile(r"^#\s*error:\s*(.+?)\s*$")


def bad_documents() -> list[BadDocument]:
    found = []
    for path in sorted(BAD_DOCUMENTS.iterdir()):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        fragments = []
        for line in path.read_text(encoding="utf-8").splitlines():
            match = _ERROR_LINE.match(line)
            if match:
                fragments.append(match.group(1))
            elif line.strip() and not line.startswith("#"):
                break
        if path.suffix == ".json":
            sidecar = path.with_suffix(".json.expect")
            fragments += [line.strip() for line in sidecar.read_text().splitlines()
                          if line.strip()]
        assert fragments, f"{path} has no '# error:' lines"
        found.append(BadDocument(path, tuple(fragments)))
    return found
