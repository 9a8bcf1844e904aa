"""`apply` and `delete` input: read `-f` documents and validate every one before any write.

Pure: the writes themselves are in `kube.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import model
from .errors import InvalidInput, Location
from .loader import expand_paths, read_documents
from .model import Origin, SidecarProxyConfig

RESOURCE_NAME = f"sidecarproxyconfig.{model.API_GROUP}"


@dataclass(frozen=True)
class Planned:
    """One validated document to apply."""

    config: SidecarProxyConfig
    doc: dict[str, Any]
    origin: Origin


def read_configs(paths: Sequence[str], recursive: bool, default_namespace: str,
                 explicit_namespace: str | None) -> tuple[list[Planned], list[str]]:
    """Every SidecarProxyConfig must be valid; one bad document fails them all, with one
    line per problem (file, document, object, field). Documents of other kinds (the
    Deployments next to them) are skipped, and listed as the second result."""
    problems: list[tuple[Location, str]] = []
    planned: list[Planned] = []
    skipped: list[str] = []
    seen: dict[tuple[str, str], Origin] = {}
    for order, (origin, doc) in enumerate(read_documents(expand_paths(paths, recursive))):
        obj = model.describe_object(doc, default_namespace)
        if doc.get("kind") != model.KIND:
            skipped.append(f"{origin.at(model.describe_object(doc)).describe()}: not a "
                           f"{model.KIND}, skipped "
                           "(apply it with kubectl apply)")
            continue
        namespace = (doc.get("metadata") or {}).get("namespace") if isinstance(
            doc.get("metadata"), dict) else None
        if explicit_namespace and namespace and namespace != explicit_namespace:
            problems.append((origin.at(obj, "metadata.namespace"),
                             f'the namespace from the provided object "{namespace}" does not '
                             f'match the namespace "{explicit_namespace}" (--namespace)'))
            continue
        try:
            config = model.parse_config(doc, origin, default_namespace, order)
        except InvalidInput as invalid:
            problems += invalid.problems
            continue
        key = (config.namespace, config.name)
        if key in seen:
            problems.append((origin.at(obj), f"{config.ref} is also in "
                             f"{seen[key].at().describe()}; keep one"))
            continue
        seen[key] = origin
        planned.append(Planned(config, doc, origin))
    if problems:
        raise InvalidInput(problems)
    if not planned:
        raise InvalidInput([(Location(", ".join(paths)),
                             f"no {model.KIND} objects passed to apply")])
    return planned, skipped


def read_names(paths: Sequence[str], recursive: bool, default_namespace: str
               ) -> list[tuple[str, str]]:
    """(namespace, name) of every SidecarProxyConfig in the files (for `delete -f`)."""
    found: list[tuple[str, str]] = []
    problems: list[tuple[Location, str]] = []
    for origin, doc in read_documents(expand_paths(paths, recursive)):
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        name = meta.get("name") if isinstance(meta, dict) else None
        if doc.get("kind") != model.KIND or not isinstance(name, str):
            problems.append((origin.at(model.describe_object(doc, default_namespace)),
                             f"is not a {model.KIND} with a name"))
            continue
        found.append((str(meta.get("namespace") or default_namespace), name))
    if problems:
        raise InvalidInput(problems)
    return found
