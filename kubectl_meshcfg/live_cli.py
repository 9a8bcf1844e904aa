"""The writing commands and `diff`: `apply`, `delete`, `diff` (registered on `cli.cli`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import output
from .apply import RESOURCE_NAME, read_configs, read_names
from .cli import Scope, cli, handle_errors, make_resolver
from .diffing import affected_namespaces, compare, diff_text, overlay
from .errors import CheckFound, UsageError
from .formats import PRECEDENCES
from .inventory import Inventory
from .model import DEFAULT_ISTIO_NAMESPACE

F = TypeVar("F", bound=Callable[..., Any])
DRY_RUN = click.Choice(["none", "client", "server"])


def cluster_options(func: F) -> F:
    options = [
        click.option("--kubeconfig", default=None,
                     help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", default=None,
                     help="Namespace (default: the context's namespace)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _scope(kubeconfig: str | None, context: str | None, namespace: str | None,
           **extra: Any) -> Scope:
    values: dict[str, Any] = {"kubeconfig": kubeconfig, "context": context,
                              "namespace": namespace, "all_namespaces": False, "local": False,
                              "filenames": (), "recursive": False,
                              "istio_namespace": DEFAULT_ISTIO_NAMESPACE,
                              "root_namespace": None}
    values.update(extra)
    return Scope(**values)


def _default_namespace(scope: Scope, offline_ok: bool = False) -> str:
    from . import kube  # noqa: PLC0415
    from .kubeconfig import KubeconfigError  # noqa: PLC0415

    try:
        return kube.current_namespace(scope)
    except KubeconfigError:
        if offline_ok:
            return "default"
        raise


def _dry_suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


@cli.command()
@click.option("-f", "--filename", "filenames", multiple=True, required=True,
              help="File, directory or - (stdin) with SidecarProxyConfigs; repeatable.")
@click.option("-R", "--recursive", is_flag=True, help="Recurse into -f directories.")
@cluster_options
@click.option("--dry-run", type=DRY_RUN, default="none", show_default=True,
              help="client: validate only, no request; server: the API server validates "
                   "and persists nothing.")
@click.option("--field-manager", default="kubectl-meshcfg", show_default=True,
              help="Field manager of the server-side apply.")
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields owned by other field managers.")
@handle_errors
def apply(filenames: tuple[str, ...], recursive: bool, kubeconfig: str | None,
          context: str | None, namespace: str | None, dry_run: str, field_manager: str,
          force_conflicts: bool) -> None:
    """Validate every SidecarProxyConfig in the files, then server-side apply them.

    Nothing is written if any document is invalid: every document is checked locally, then
    by the API server with a dry run, before the first real write."""
    scope = _scope(kubeconfig, context, namespace)
    default_ns = _default_namespace(scope, offline_ok=dry_run == "client")
    planned, skipped = read_configs(filenames, recursive, default_ns, namespace)
    for note in skipped:
        click.echo(note, err=True)
    if dry_run == "client":
        for item in planned:
            click.echo(f"{RESOURCE_NAME}/{item.config.name} serverside-applied (dry run)")
        return
    from . import kube  # noqa: PLC0415

    api = kube.api_for(scope)
    force = force_conflicts
    for item in planned:       # the server validates everything before anything is written
        kube.server_side_apply(api, item.doc, item.config.namespace, item.config.name,
                               field_manager, force, dry_run=True)
    if dry_run == "server":
        for item in planned:
            click.echo(f"{RESOURCE_NAME}/{item.config.name} serverside-applied (server dry run)")
        return
    for item in planned:
        kube.server_side_apply(api, item.doc, item.config.namespace, item.config.name,
                               field_manager, force, dry_run=False)
        click.echo(f"{RESOURCE_NAME}/{item.config.name} serverside-applied")


@cli.command()
@click.argument("names", nargs=-1)
@click.option("-f", "--filename", "filenames", multiple=True,
              help="Delete the SidecarProxyConfigs named in these files.")
@click.option("-R", "--recursive", is_flag=True, help="Recurse into -f directories.")
@cluster_options
@click.option("--dry-run", type=DRY_RUN, default="none", show_default=True)
@click.option("--ignore-not-found", is_flag=True, help="Treat a missing object as deleted.")
@handle_errors
def delete(names: tuple[str, ...], filenames: tuple[str, ...], recursive: bool,
           kubeconfig: str | None, context: str | None, namespace: str | None, dry_run: str,
           ignore_not_found: bool) -> None:
    """Delete SidecarProxyConfigs by NAME (in -n or the context's namespace) or from -f."""
    if bool(names) == bool(filenames):
        raise UsageError("give NAME... or -f PATH (one of the two)")
    scope = _scope(kubeconfig, context, namespace)
    default_ns = _default_namespace(scope, offline_ok=dry_run == "client")
    targets = [(default_ns, n.removeprefix(f"{RESOURCE_NAME}/").removeprefix("spc/"))
               for n in names]
    if filenames:
        targets = read_names(filenames, recursive, default_ns)
    if dry_run == "client":
        for _, name in targets:
            click.echo(f'{RESOURCE_NAME} "{name}" deleted (dry run)')
        return
    from . import kube  # noqa: PLC0415

    api = kube.api_for(scope)
    for ns, name in targets:
        if kube.delete_config(api, ns, name, dry_run=dry_run == "server",
                              missing_ok=ignore_not_found):
            click.echo(f'{RESOURCE_NAME} "{name}" deleted{_dry_suffix(dry_run)}')


@cli.command()
@click.option("-f", "--filename", "changes", multiple=True, required=True,
              help="The CHANGE: files, directories or - (stdin); repeatable.")
@click.option("-R", "--recursive", is_flag=True, help="Recurse into directories.")
@click.option("--local", is_flag=True, help="No cluster: the current state is --base.")
@click.option("--base", "base", multiple=True,
              help="With --local: the current state (files, directories); repeatable.")
@cluster_options
@click.option("-A", "--all-namespaces", is_flag=True,
              help="Compare every namespace (default: the namespaces the change can reach).")
@click.option("--istio-namespace", default=DEFAULT_ISTIO_NAMESPACE, show_default=True)
@click.option("--root-namespace", default=None)
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]),
              default="text", show_default=True)
@click.option("--precedence", type=click.Choice(PRECEDENCES), default=None)
@handle_errors
def diff(changes: tuple[str, ...], recursive: bool, local: bool, base: tuple[str, ...],
         kubeconfig: str | None, context: str | None, namespace: str | None,
         all_namespaces: bool, istio_namespace: str, root_namespace: str | None, fmt: str,
         precedence: str | None) -> None:
    """Which targets' effective sidecar config would change, field by field, if CHANGE were
    applied (objects of the same name replaced). Exit 3 when something changes."""
    from .loader import load_inventory  # noqa: PLC0415

    if base and not local:
        raise UsageError("--base needs --local (live, the current state is the cluster)")
    if local and not base:
        raise UsageError("--local needs --base PATH (the current state)")
    scope = _scope(kubeconfig, context, namespace, all_namespaces=all_namespaces,
                   local=local, filenames=base, recursive=recursive,
                   istio_namespace=istio_namespace, root_namespace=root_namespace)
    default_ns = namespace or ("default" if local else _default_namespace(scope))
    change = load_inventory(changes, recursive, default_ns, istio_namespace)
    if local:
        before = load_inventory(base, recursive, default_ns, istio_namespace)
    else:
        before = _live_before(scope, change)
    after = overlay(before, change)
    result = compare(before, after, make_resolver(before, scope, precedence).resolve,
                     make_resolver(after, scope, precedence).resolve, None)
    if fmt == "text":
        click.echo(diff_text(result), nl=False)
    else:
        click.echo(output.dump(result, fmt), nl=False)
    if result["items"]:
        raise CheckFound()


def _live_before(scope: Scope, change: Inventory) -> Inventory:
    """Read only the namespaces the change can reach (all of them for a global object or
    a mesh config change)."""
    from . import kube  # noqa: PLC0415

    api = kube.api_for(scope)
    if scope.all_namespaces:
        return kube.load_live_inventory(scope, api=api)
    guess = scope.root_namespace or scope.istio_namespace
    reach = affected_namespaces(change, guess)
    if reach is not None:
        before = kube.load_live_inventory(scope, namespaces=reach, api=api)
        root = make_resolver(before, scope, None).root_namespace
        if root == guess:
            return before
        reach = affected_namespaces(change, root)
        if reach is not None:
            return kube.load_live_inventory(scope, namespaces=reach, api=api)
    return kube.load_live_inventory(dataclasses.replace(scope, all_namespaces=True), api=api)
