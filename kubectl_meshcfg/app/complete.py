"""Names for shell completion: targets of a kind and SidecarProxyConfigs, from the cluster
(or the --local files) the command line so far names. Any failure means no names: a TAB
must never print an error."""

from __future__ import annotations

from ..core import kinds
from ..core.errors import MeshcfgError
from ..core.inventory import Inventory, TargetQuery
from .scope import Scope, load, query_namespace


def target_names(scope: Scope, kind_text: str) -> list[str]:
    kind = kinds.lookup(kind_text)
    if kind is None:
        return []
    found = _load(scope, kind.name)
    if not found:
        return []
    inventory, namespace = found
    return sorted({t.name for t in inventory.targets
                   if t.kind == kind.name and (namespace is None or t.namespace == namespace)})


def config_names(scope: Scope) -> list[str]:
    found = _load(scope, None)
    if not found:
        return []
    inventory, namespace = found
    return sorted({c.name for c in inventory.configs if namespace is None or c.namespace == namespace})


def _load(scope: Scope, kind: str | None) -> tuple[Inventory, str | None] | None:
    try:
        namespace = query_namespace(scope)
        return load(scope, TargetQuery(kind=kind, namespace=namespace)), namespace
    except (MeshcfgError, OSError):
        return None
