"""The one module that talks to the Kubernetes API (the `kubernetes` client, imported
lazily by its callers so that `--help` and `--local` stay fast)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import MeshcfgError
from .inventory import Inventory

if TYPE_CHECKING:
    from .cli import Scope


def load_live_inventory(scope: Scope) -> Inventory:
    raise MeshcfgError("live cluster mode is not built yet; use --local -f PATH")


def current_namespace(scope: Scope) -> str | None:
    return scope.namespace or "default"
