"""apply and delete: read `-f` documents and validate every one, then write.

apply's order is a SPEC guarantee: every document is checked locally, then by the API
server with a dry run, before the first real write, so nothing is half-applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import model
from ..core.errors import InvalidInput, Location
from ..core.model import Origin, SidecarProxyConfig
from ..kube import errors, resources, writes
from .loader import expand_paths, read_documents, untrusted_configs
from .scope import Scope, current_namespace

RESOURCE_NAME = f"sidecarproxyconfig.{model.API_GROUP}"


@dataclass(frozen=True)
class ConfigDocument:
    """One validated document to apply."""

    config: SidecarProxyConfig
    doc: dict[str, Any]
    origin: Origin


def read_configs(paths: Sequence[str], recursive: bool, default_namespace: str,
                 explicit_namespace: str | None, root_namespace: str = model.DEFAULT_ISTIO_NAMESPACE
                 ) -> tuple[list[ConfigDocument], list[str]]:
    """Every SidecarProxyConfig must be valid; one bad document fails them all, with one
    line per problem (file, document, object, field). Documents of other kinds (the
    Deployments next to them) are skipped, and listed as the second result."""
    problems: list[tuple[Location, str]] = []
    planned: list[ConfigDocument] = []
    skipped: list[str] = []
    seen: dict[tuple[str, str], Origin] = {}
    for order, (origin, doc) in enumerate(read_documents(expand_paths(paths, recursive))):
        obj = model.describe_object(doc, default_namespace)
        if doc.get("kind") != model.KIND and not model.in_api_group(doc):
            skipped.append(_skip_note(origin, doc, "apply"))
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
        planned.append(ConfigDocument(config, doc, origin))
    problems += untrusted_configs([item.config for item in planned], root_namespace)
    if problems:
        raise InvalidInput(problems)
    if not planned:
        raise InvalidInput([(Location(", ".join(paths)),
                             f"no {model.KIND} objects passed to apply")])
    return planned, skipped


def _skip_note(origin: Origin, doc: dict[str, Any], verb: str) -> str:
    return (f"{origin.at(model.describe_object(doc)).describe()}: not a {model.KIND}, skipped "
            f"({verb} it with kubectl {verb})")


def read_names(paths: Sequence[str], recursive: bool, default_namespace: str
               ) -> tuple[list[tuple[str, str]], list[str]]:
    """(namespace, name) of every SidecarProxyConfig in the files (for `delete -f`), and a
    note for each document of another kind, skipped as apply skips it."""
    found: list[tuple[str, str]] = []
    skipped: list[str] = []
    problems: list[tuple[Location, str]] = []
    for origin, doc in read_documents(expand_paths(paths, recursive)):
        if doc.get("kind") != model.KIND:
            skipped.append(_skip_note(origin, doc, "delete"))
            continue
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            problems.append((origin.at(model.describe_object(doc, default_namespace),
                                       "metadata.name"), "is required"))
            continue
        found.append((str(meta.get("namespace") or default_namespace), name))
    if problems:
        raise InvalidInput(problems)
    return found, skipped


@dataclass(frozen=True)
class ApplyOptions:
    filenames: tuple[str, ...]
    recursive: bool = False
    dry_run: str = "none"                 # none | client | server
    field_manager: str = "kubectl-meshcfg"
    force_conflicts: bool = False


Report = Callable[[str], None]


Progress = Callable[[str, int, int], None]      # (phase, done, total)


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


def apply(scope: Scope, options: ApplyOptions, skipped: Report, applied: Report,
          progress: Progress = _no_progress) -> None:
    """Validate locally, then let the server validate everything (dry run), then write;
    `applied` hears of each object as it is written (or validated, in a dry run),
    `progress` of each step of the server phases."""
    default_ns = current_namespace(scope, offline_ok=options.dry_run == "client")
    planned, notes = read_configs(options.filenames, options.recursive, default_ns,
                                  scope.namespace, scope.root_namespace or scope.istio_namespace)
    for note in notes:
        skipped(note)
    total = len(planned)
    if options.dry_run != "client":
        for done, item in enumerate(planned, start=1):
            _apply_one(scope, options, item, dry_run=True)
            progress("validating (server dry run)", done, total)
    for done, item in enumerate(planned, start=1):
        if options.dry_run == "none":
            _apply_one(scope, options, item, dry_run=False)
            progress("applying", done, total)
        applied(f"{RESOURCE_NAME}/{item.config.name}")


def _apply_one(scope: Scope, options: ApplyOptions, item: ConfigDocument, dry_run: bool) -> None:
    try:
        writes.server_side_apply(scope.api, item.doc, item.config.namespace, item.config.name,
                                 options.field_manager, options.force_conflicts, dry_run=dry_run)
    except errors.ApiError as error:
        if type(error) not in _ABOUT_THE_DOCUMENT:
            raise
        where = item.origin.at(f"{model.KIND} {item.config.ref}").describe()
        raise type(error)(f"error: {where}: {str(error).removeprefix('error: ')}",
                          error.status, error.payload) from None


# refusals of the document itself (not of access to the cluster): they name where it came from
_ABOUT_THE_DOCUMENT = (errors.Invalid, errors.ApplyConflict, errors.ApiError)


@dataclass(frozen=True)
class DeleteOptions:
    names: tuple[str, ...] = ()
    filenames: tuple[str, ...] = ()
    recursive: bool = False
    dry_run: str = "none"
    ignore_not_found: bool = False
    all: bool = False                    # every SidecarProxyConfig in the namespace
    all_namespaces: bool = False         # with all: in every namespace


def delete(scope: Scope, options: DeleteOptions, deleted: Report, skipped: Report) -> None:
    """`deleted` hears the name of each SidecarProxyConfig deleted (or that would be),
    `skipped` of each -f document of another kind."""
    for ns, name in _delete_targets(scope, options, skipped):
        if options.dry_run == "client" or writes.delete_config(
                scope.api, ns, name, dry_run=options.dry_run == "server",
                missing_ok=options.ignore_not_found):
            deleted(name)


def _delete_targets(scope: Scope, options: DeleteOptions, skipped: Report) -> list[tuple[str, str]]:
    if options.all:
        namespace = None if options.all_namespaces else current_namespace(scope)
        docs = scope.api.list(resources.SIDECAR_CONFIGS, namespace)
        return sorted((d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs)
    default_ns = current_namespace(scope, offline_ok=options.dry_run == "client")
    if options.filenames:
        found, notes = read_names(options.filenames, options.recursive, default_ns)
        for note in notes:
            skipped(note)
        return found
    return [(default_ns, n.removeprefix(f"{RESOURCE_NAME}/").removeprefix("spc/"))
            for n in options.names]
