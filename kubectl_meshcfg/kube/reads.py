"""Reading what resolution needs from the cluster: the mesh config, SidecarProxyConfigs
and targets, with as few requests as the question allows.

Objects read from the cluster that do not validate (stored before the CRD tightened, or
with no CRD schema at all) do not kill the command: each is reported as one `warning:`
line on stderr and left out, so every other target still resolves.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..core import model, revisions
from ..core.errors import InvalidInput
from ..core.inventory import Inventory, TargetQuery
from ..core.model import CLUSTER
from . import resources, revisionreads
from .errors import Forbidden
from .resources import Call, Resource
from .transport import Api

T = TypeVar("T")


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_live_inventory(api: Api, namespaces: list[str] | None, istio_namespace: str,
                        root_namespace: str | None = None, query: TargetQuery | None = None
                        ) -> Inventory:
    """Mesh config, SidecarProxyConfigs and targets from the cluster.

    Reads only what the query needs: `namespaces=None` lists cluster-wide, otherwise
    those namespaces plus the mesh root namespace for the global configs; a named target
    is one GET. Independent lists run concurrently.
    """
    guess_root = root_namespace or istio_namespace
    with ThreadPoolExecutor(max_workers=8) as pool:
        mesh_f = pool.submit(api.get, Call("get", resources.CONFIGMAPS, istio_namespace,
                                           model.MESH_CONFIGMAP), True)
        injector_f = pool.submit(_get_istio_configmap, api, istio_namespace)
        config_fs = _list_configs(pool, api, namespaces, [guess_root])
        target_fs = _target_futures(pool, api, query, namespaces)
        mesh = _parse_mesh(mesh_f.result(), istio_namespace)
        root = root_namespace or (mesh.root_namespace if mesh else istio_namespace)
        if namespaces is not None and root != guess_root and root not in namespaces:
            config_fs += _list_configs(pool, api, [], [root])
        config_docs = _results(config_fs)
        target_docs = _results(target_fs)
        if query is None and namespaces == [root]:
            # `get -n <root>`: a global object's matched pods are in every namespace.
            target_docs = _with_all_pods(api, target_docs, root)
    inventory = _inventory(mesh, config_docs, target_docs)
    inventory.injector = _parse_injector(injector_f.result(), istio_namespace)
    _add_revisions(api, inventory, istio_namespace)
    return inventory


def _add_revisions(api: Api, inventory: Inventory, istio_namespace: str) -> None:
    """The ConfigMaps of the other revisions the targets use: istio-<rev> and
    istio-sidecar-injector-<rev>. Injected pods name theirs; for the others Istio's webhook
    rules decide from namespace labels and revision tags (kube/revisionreads.py)."""
    pending = [t for t in inventory.targets if not revisions.injected_revision(t.annotations)]
    if pending:
        inventory.namespace_labels.update(
            revisionreads.namespace_labels(api, sorted({t.namespace for t in pending}), warn))
        if any(revisions.names_revision(t.labels) for t in pending) or any(
                revisions.names_revision(labels) for labels in inventory.namespace_labels.values()):
            inventory.tags.update(revisionreads.revision_tags(api, warn))
    named = {revisions.revision_of(t.annotations, t.labels,
                                   inventory.namespace_labels.get(t.namespace, {}), inventory.tags)
             for t in inventory.targets}
    named.discard(revisions.DEFAULT)
    for revision in sorted(named):
        injector = _get_istio_configmap(api, istio_namespace, revision)
        if injector is not None:
            values = _parse_injector(injector, istio_namespace)
            if values is not None:
                inventory.revision_injectors[revision] = values
        mesh = _get_istio_configmap(api, istio_namespace, revision, "mesh")
        parsed = _parse_mesh(mesh, istio_namespace)
        if parsed is not None:
            inventory.revision_meshes[revision] = parsed


def _get_istio_configmap(api: Api, istio_namespace: str, revision: str = revisions.DEFAULT,
                  kind: str = "injector") -> Mapping[str, Any] | None:
    name = revisions.configmap_name(kind, revision)
    call = Call("get", resources.CONFIGMAPS, istio_namespace, name)
    try:
        return api.get(call, missing_ok=True)  # type: ignore[no-any-return]
    except Forbidden:
        warn(f"cannot read ConfigMap {istio_namespace}/{name}: revision {revision} resolves "
             "without it (meshcfg-mesh-reader grants it: manifests/rbac/meshcfg-readonly.yaml; "
             "add the names of your revisions' ConfigMaps to its resourceNames)")
        return None


def _parse_injector(doc: Mapping[str, Any] | None, istio_ns: str) -> model.InjectorValues | None:
    return _parse_istio(model.parse_injector_values, doc, istio_ns, "the injector values")


def _parse_mesh(doc: Mapping[str, Any] | None, istio_ns: str) -> model.MeshConfig | None:
    return _parse_istio(model.parse_mesh_config, doc, istio_ns, "the mesh config")


def _parse_istio(parse: Callable[[Mapping[str, Any], model.Origin, str], T],
                 doc: Mapping[str, Any] | None, istio_ns: str, what: str) -> T | None:
    """An Istio ConfigMap parsed, or None with a warning when it does not validate."""
    if doc is None:
        return None
    try:
        return parse(doc, CLUSTER, istio_ns)
    except InvalidInput as invalid:
        for location, reason in invalid.problems:
            warn(f"ignoring {what}: {location.describe()}: {reason}")
        return None


def _inventory(mesh: model.MeshConfig | None, config_docs: list[dict[str, Any]],
               target_docs: list[dict[str, Any]]) -> Inventory:
    inventory = Inventory(mesh=mesh)
    seen: set[tuple[str, str]] = set()
    for doc in config_docs:
        meta = doc.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if key in seen:
            continue
        seen.add(key)
        config = parse_or_warn(model.parse_config, doc)
        if config is not None:
            inventory.configs.append(config)
    for doc in target_docs:
        target = parse_or_warn(model.parse_target, doc)
        if target is not None:
            inventory.targets.append(target)
    return inventory


def _list_configs(pool: ThreadPoolExecutor, api: Api, wanted: list[str] | None,
                  extra: list[str]) -> list[Future[list[dict[str, Any]]]]:
    if wanted is None:
        return [pool.submit(api.list, resources.SIDECAR_CONFIGS, None)]
    return [pool.submit(api.list, resources.SIDECAR_CONFIGS, ns)
            for ns in dict.fromkeys(wanted + extra)]


def _target_futures(pool: ThreadPoolExecutor, api: Api, query: TargetQuery | None,
                    wanted: list[str] | None) -> list[Future[list[dict[str, Any]]]]:
    kinds = list(resources.TARGET_RESOURCES)
    if query is not None and query.kind is not None:
        kinds = [query.kind]
        if query.name is not None and wanted is not None:
            resource = resources.TARGET_RESOURCES[query.kind]
            return [pool.submit(_get_one, api, resource, ns, query.name) for ns in wanted]
    namespaces: list[str | None] = [None] if wanted is None else list(wanted)
    futures = []
    for kind in kinds:
        resource = resources.TARGET_RESOURCES[kind]
        for ns in namespaces:
            futures.append(pool.submit(_typed_list, api, resource, ns))
    return futures


def _with_all_pods(api: Api, docs: list[dict[str, Any]], root: str) -> list[dict[str, Any]]:
    try:
        pods = _typed_list(api, resources.TARGET_RESOURCES["Pod"], None)
    except Forbidden:
        warn(f"cannot list pods in every namespace: the PODS of global objects count "
             f"namespace {root} only")
        return docs
    return [d for d in docs if d["kind"] != "Pod"] + pods


def _get_one(api: Api, resource: Resource, namespace: str, name: str) -> list[dict[str, Any]]:
    doc = api.get(Call("get", resource, namespace, name), missing_ok=True)
    return [_typed(doc, resource)] if doc else []


def _typed_list(api: Api, resource: Resource, namespace: str | None) -> list[dict[str, Any]]:
    return [_typed(doc, resource) for doc in api.list(resource, namespace)]


def _typed(doc: dict[str, Any], resource: Resource) -> dict[str, Any]:
    """List items carry no kind/apiVersion; put them back."""
    doc["kind"] = resource.kind
    doc["apiVersion"] = resource.api_version
    return doc


def _results(futures: list[Future[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for future in futures:
        out += future.result()
    return out


def parse_or_warn(parse: Callable[..., Any], doc: Mapping[str, Any]) -> Any:
    try:
        return parse(doc, CLUSTER, "default")
    except InvalidInput as invalid:
        for location, reason in invalid.problems:
            warn(f"skipping {model.describe_object(doc)} (invalid in the cluster): "
                 f"{location.field or ''}: {reason}".replace(" : ", " "))
        return None
