"""Local manifests (`--local -f PATH...`): files, directories and stdin into an Inventory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import yaml

from ..core import bounded, kinds, kubeyaml, model, proxyconfigs, revisions, trust
from ..core.errors import InvalidInput, Location, MeshcfgError
from ..core.inventory import Inventory
from ..core.model import Origin

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
Document = tuple[Origin, Any]


def expand_paths(paths: Sequence[str], recursive: bool) -> list[str]:
    """Files named by -f, in sorted path order ("-" is stdin)."""
    files: list[str] = []
    for path in paths:
        if path == "-":
            files.append(path)
        elif os.path.isdir(path):
            files += _directory_files(path, recursive)
        elif os.path.exists(path):     # files, and /dev/stdin, <(...) pipes, /dev/null
            files.append(path)
        else:
            raise MeshcfgError(f"error: the path {path!r} does not exist")
    return sorted(dict.fromkeys(files))


def _directory_files(path: str, recursive: bool) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        found += [os.path.join(dirpath, f) for f in filenames if f.endswith(MANIFEST_SUFFIXES)]
        if not recursive:
            break
    return found


def read_documents(files: Sequence[str]) -> Iterator[Document]:
    """Every non-empty document, with List kinds expanded; YAML errors become InvalidInput."""
    stdin_read = False
    for path in files:
        if path == "-":
            data = b"" if stdin_read else _read_bounded(path, sys.stdin.buffer)
            stdin_read = True
        else:
            with open(path, "rb") as handle:
                data = _read_bounded(path, handle)
        text, replaced = bounded.decode(data)
        yield from _parse_stream(path, text, replaced)


def _read_bounded(path: str, handle: Any) -> bytes:
    data: bytes = handle.read(bounded.MAX_FILE + 1)
    if len(data) > bounded.MAX_FILE:
        raise InvalidInput([(Location(path), f"is larger than {bounded.MAX_FILE} bytes")])
    return data


def _parse_stream(path: str, text: str, replaced: bool = False) -> Iterator[Document]:
    index = 0
    try:
        for index, (doc, census) in enumerate(kubeyaml.documents(text, replaced), start=1):  # noqa: B007
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise InvalidInput([(Location(path, index), "is not a Kubernetes object (a map)")])
            yield from _expand_list(Origin(path, index, census.spellings), doc)
    except bounded.LimitExceeded as limit:
        raise InvalidInput([(Location(path, index + 1, None, limit.field or None), limit.reason)]
                           ) from None
    except yaml.YAMLError as error:
        raise InvalidInput([(Location(path, index + 1), f"invalid YAML: {_yaml_reason(error)}")]
                           ) from None


def _yaml_reason(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    problem = bounded.cut(problem, 200)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _expand_list(origin: Origin, doc: dict[str, Any]) -> Iterator[Document]:
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            if isinstance(item, dict):
                yield origin, item
    else:
        yield origin, doc


def load_inventory(paths: Sequence[str], recursive: bool, default_namespace: str,
                   istio_namespace: str, root_namespace: str | None = None) -> Inventory:
    """Parse and validate every document; any invalid one fails the whole load."""
    inventory = Inventory()
    problems: list[tuple[Location, str]] = []
    for order, (origin, doc) in enumerate(read_documents(expand_paths(paths, recursive))):
        try:
            add_document(inventory, origin, doc, default_namespace, istio_namespace, order)
        except InvalidInput as invalid:
            problems += invalid.problems
    problems += duplicate_configs(inventory.configs)
    root = root_namespace or (inventory.mesh.root_namespace if inventory.mesh else istio_namespace)
    problems += untrusted_configs(inventory.configs, root)
    if problems:
        raise InvalidInput(problems)
    return inventory


def untrusted_configs(configs: Sequence[model.SidecarProxyConfig], root_namespace: str
                      ) -> list[tuple[Location, str]]:
    """Code-bearing fields outside the mesh root namespace (core/trust.py)."""
    return [(config.origin.at(f"{model.KIND} {config.ref}", field), reason)
            for config in configs
            for field, reason in trust.check_config(config.namespace, config.values,
                                                    root_namespace)]


def duplicate_configs(configs: Sequence[model.SidecarProxyConfig]) -> list[tuple[Location, str]]:
    """apply refuses two documents for one object; so does --local."""
    seen: dict[tuple[str, str], Origin] = {}
    problems = []
    for config in configs:
        key = (config.namespace, config.name)
        if key in seen:
            problems.append((config.origin.at(f"{model.KIND} {config.ref}"),
                             f"{config.ref} is also in {seen[key].at().describe()}; keep one"))
        else:
            seen[key] = config.origin
    return problems


def add_document(inventory: Inventory, origin: Origin, doc: dict[str, Any],
                 default_namespace: str, istio_namespace: str, order: int = 0) -> None:
    kind = doc.get("kind")
    if kind == model.KIND or model.in_api_group(doc):
        inventory.configs.append(model.parse_config(doc, origin, default_namespace, order))
    elif kinds.is_target(kind):
        inventory.targets.append(model.parse_target(doc, origin, default_namespace))
    elif proxyconfigs.is_proxy_config(doc):
        inventory.proxy_configs.append(proxyconfigs.parse(doc, origin, default_namespace, order))
    elif kind == "ConfigMap" and _in_namespace(doc, istio_namespace):
        _add_istio_configmap(inventory, origin, doc, istio_namespace)
    elif kind == "Namespace" and isinstance((doc.get("metadata") or {}).get("name"), str):
        meta = doc["metadata"]
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        inventory.namespace_labels[meta["name"]] = {str(k): str(v) for k, v in labels.items()}
    elif kind == "MutatingWebhookConfiguration" and (tag := revisions.tag_of(doc)):
        inventory.tags[tag[0]] = tag[1]


def _in_namespace(doc: dict[str, Any], istio_namespace: str) -> bool:
    meta = doc.get("metadata") or {}
    return bool(meta.get("namespace", istio_namespace) == istio_namespace)


def _add_istio_configmap(inventory: Inventory, origin: Origin, doc: dict[str, Any],
                         istio_namespace: str) -> None:
    """The mesh config and injector values of each revision (istio[-<rev>],
    istio-sidecar-injector[-<rev>])."""
    found = revisions.configmap_revision(str((doc.get("metadata") or {}).get("name") or ""))
    if found is None:
        return
    kind, revision = found
    if ("mesh" if kind == "mesh" else "values") not in (doc.get("data") or {}):
        return   # another ConfigMap of that name shape (istio-ca-root-cert, ...)
    if kind == "mesh":
        mesh = model.parse_mesh_config(doc, origin, istio_namespace)
        if revision == revisions.DEFAULT:
            inventory.mesh = mesh
        else:
            inventory.revision_meshes[revision] = mesh
    else:
        values = model.parse_injector_values(doc, origin, istio_namespace)
        if revision == revisions.DEFAULT:
            inventory.injector = values
        else:
            inventory.revision_injectors[revision] = values
