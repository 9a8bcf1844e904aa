"""Where a command's objects come from (the cluster or `--local -f` files) and which
namespaces it looks at; loading the inventory and building the resolver."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..core.errors import UsageError
from ..core.inventory import Inventory, TargetQuery
from ..core.model import DEFAULT_ISTIO_NAMESPACE
from ..core.resolve import Resolver, Revisions
from ..kube.kubeconfig import KubeconfigError
from ..kube.proxyconfigs import list_proxy_configs
from ..kube.reads import load_live_inventory
from ..kube.transport import Api, Session


@dataclass(frozen=True)
class Scope:
    """The scope flags of a command, and the cluster session they name."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    all_namespaces: bool = False
    local: bool = False
    filenames: tuple[str, ...] = ()
    recursive: bool = False
    istio_namespace: str = DEFAULT_ISTIO_NAMESPACE
    root_namespace: str | None = None
    session: Session = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.session is None:
            object.__setattr__(self, "session", Session(self.kubeconfig, self.context))

    def default_namespace(self) -> str:
        return self.namespace or "default"

    def check_files(self) -> Scope:
        """The commands that read the cluster take -f only with --local, and --local needs -f."""
        if self.filenames and not self.local:
            raise UsageError("-f needs --local here (the cluster commands read the cluster)")
        if self.local and not self.filenames:
            raise UsageError("--local needs -f PATH (files, directories or - for stdin)")
        return self

    def replace(self, **changes: object) -> Scope:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @property
    def api(self) -> Api:
        return self.session.api


def current_namespace(scope: Scope, offline_ok: bool = False) -> str:
    """`-n`, else the context's namespace, else `default` (kubectl's rule); `default` when
    there is no kubeconfig and the command works offline."""
    if scope.namespace:
        return scope.namespace
    try:
        return scope.session.access.namespace
    except KubeconfigError:
        if scope.local or offline_ok:
            return "default"
        raise


def query_namespace(scope: Scope) -> str | None:
    """The namespace whose targets the command shows; None for all of them."""
    if scope.all_namespaces:
        return None
    if scope.local:
        return scope.default_namespace()
    return current_namespace(scope)


def load(scope: Scope, query: TargetQuery | None = None) -> Inventory:
    """The inventory; live, `query` lets the loader read only the targets it names."""
    if scope.local:
        from .loader import load_inventory  # noqa: PLC0415

        return load_inventory(scope.filenames, scope.recursive, scope.default_namespace(),
                              scope.istio_namespace, scope.root_namespace)
    return load_live(scope, query)


def load_live(scope: Scope, query: TargetQuery | None = None,
              namespaces: set[str] | None = None) -> Inventory:
    """The cluster's inventory for the scope's namespace, `namespaces`, or all (`-A`)."""
    wanted: list[str] | None
    if scope.all_namespaces:
        wanted = None
    elif namespaces is not None:
        wanted = sorted(namespaces)
    else:
        wanted = [current_namespace(scope)]
    inventory = load_live_inventory(scope.api, wanted, scope.istio_namespace,
                                    scope.root_namespace, query)
    root = scope.root_namespace or (inventory.mesh.root_namespace if inventory.mesh
                                    else scope.istio_namespace)
    inventory.proxy_configs = list_proxy_configs(scope.api, wanted, root)
    return inventory


def make_resolver(inventory: Inventory, scope: Scope, precedence: str | None) -> Resolver:
    revisions = Revisions(inventory.revision_meshes, inventory.revision_injectors,
                          inventory.namespace_labels, inventory.tags)
    return Resolver(inventory.configs, inventory.mesh, root_namespace=scope.root_namespace,
                    precedence=precedence, istio_namespace=scope.istio_namespace,
                    injector=inventory.injector, revisions=revisions,
                    proxy_configs=inventory.proxy_configs)
