"""The package's layers import only downward (cli -> app -> kube -> core) and no module
takes part in an import loop; drain_agent imports only the stdlib and psutil.

Read from the source (every import statement, also those inside functions), so a lazy
import cannot hide a wrong direction."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "kubectl_meshcfg"
LAYERS = ("core", "kube", "app", "cli")       # lowest first


def modules(package: str) -> dict[str, Path]:
    base = ROOT / package
    found = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module of this project, line) for each import in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known(alias.name, known, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, is_package, node.module, node.level)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield from _known(candidate if candidate in known else base, known, node.lineno)


def _absolute(name: str, is_package: bool, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = name.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[:len(anchor) - (level - 1)]
    return ".".join([*anchor, module] if module else anchor)


def _known(target: str, known: set[str], line: int) -> Iterator[tuple[str, int]]:
    while target and target not in known:
        target = target.rpartition(".")[0]
    if target:
        yield target, line


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def graph() -> dict[str, set[str]]:
    found = modules(PACKAGE)
    known = set(found)
    return {name: {target for target, _ in imports_of(name, path, known)} - {name}
            for name, path in found.items()}


def test_every_module_is_in_a_layer() -> None:
    outside = [m for m in modules(PACKAGE)
               if layer(m) is None and m not in (PACKAGE, f"{PACKAGE}.__main__")]
    assert outside == []


def test_layers_import_only_downward() -> None:
    found = modules(PACKAGE)
    upward = []
    for name, path in found.items():
        own = layer(name)
        for target, line in imports_of(name, path, set(found)):
            their = layer(target)
            if own is not None and (their is None and target != PACKAGE or
                                    their is not None and their > own):
                upward.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {target}")
    assert upward == []


def test_no_import_loops() -> None:
    edges = graph()
    loops = [cycle for cycle in _cycles(edges)]
    assert loops == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_checks_see_a_loop_and_an_upward_import() -> None:
    """The checks themselves: a planted loop and a planted upward import are found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer(f"{PACKAGE}.core.model") < layer(f"{PACKAGE}.cli.output")  # type: ignore[operator]
    assert list(_known(f"{PACKAGE}.core.model.Target", {f"{PACKAGE}.core.model"}, 1)) == [
        (f"{PACKAGE}.core.model", 1)]


def test_drain_agent_imports_only_stdlib_and_psutil() -> None:
    allowed = set(sys.stdlib_module_names) | {"psutil", "drain_agent", "__future__"}
    foreign = []
    for name, path in modules("drain_agent").items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            foreign += [f"{name}: {root}" for root in roots if root not in allowed]
    assert foreign == []
