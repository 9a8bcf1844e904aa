"""The writing commands and diff: apply, delete, diff."""

from __future__ import annotations

import click

from ..app import apply as applying
from ..app import diff as diffing
from ..app.scope import Scope
from ..core.errors import CheckFound, UsageError
from . import output
from .complete import complete_config
from .options import DRY_RUN, PRECEDENCE, cluster_options, mesh_options, non_empty
from .progress import Progress


def _dry_suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


@click.command()
@click.option("-f", "--filename", "filenames", multiple=True, required=True, type=click.Path(),
              help="File, directory or - (stdin) with SidecarProxyConfigs; repeatable.")
@click.option("-R", "--recursive", is_flag=True, help="Recurse into -f directories.")
@cluster_options
@mesh_options
@click.option("--dry-run", type=DRY_RUN, default="none", show_default=True,
              help="client: validate only, no request; server: the API server validates "
                   "and persists nothing.")
@click.option("--field-manager", default="kubectl-meshcfg", show_default=True,
              callback=non_empty, help="Field manager of the server-side apply.")
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields owned by other field managers.")
def apply(filenames: tuple[str, ...], recursive: bool, kubeconfig: str | None,
          context: str | None, namespace: str | None, istio_namespace: str,
          root_namespace: str | None, dry_run: str, field_manager: str,
          force_conflicts: bool) -> None:
    """Validate every SidecarProxyConfig in the files, then server-side apply them.

    Nothing is written if any document is invalid: every document is checked locally, then
    by the API server with a dry run, before the first real write. Hooks that run code and
    the drain agent's image are refused outside the mesh root namespace (docs/security.md)."""
    scope = Scope(kubeconfig, context, namespace, istio_namespace=istio_namespace,
                  root_namespace=root_namespace)
    options = applying.ApplyOptions(filenames, recursive, dry_run, field_manager, force_conflicts)
    progress = Progress()
    try:
        applying.apply(scope, options, skipped=lambda note: click.echo(note, err=True),
                       applied=lambda name: click.echo(f"{name} serverside-applied"
                                                       f"{_dry_suffix(dry_run)}"),
                       progress=progress)
    finally:
        progress.close()


@click.command()
@click.argument("names", nargs=-1, shell_complete=complete_config)
@click.option("-f", "--filename", "filenames", multiple=True, type=click.Path(),
              help="Delete the SidecarProxyConfigs named in these files (other kinds are "
                   "skipped, as apply skips them).")
@click.option("-R", "--recursive", is_flag=True, help="Recurse into -f directories.")
@click.option("--all", "delete_all", is_flag=True,
              help="Delete every SidecarProxyConfig in the namespace.")
@click.option("-A", "--all-namespaces", is_flag=True, help="With --all: in every namespace.")
@cluster_options
@click.option("--dry-run", type=DRY_RUN, default="none", show_default=True)
@click.option("--ignore-not-found", is_flag=True, help="Treat a missing object as deleted.")
def delete(names: tuple[str, ...], filenames: tuple[str, ...], recursive: bool, delete_all: bool,
           all_namespaces: bool, kubeconfig: str | None, context: str | None,
           namespace: str | None, dry_run: str, ignore_not_found: bool) -> None:
    """Delete SidecarProxyConfigs by NAME (in -n or the context's namespace), from -f, or
    --all of them."""
    if sum((bool(names), bool(filenames), delete_all)) != 1:
        raise UsageError("give NAME..., -f PATH or --all (one of the three)")
    if all_namespaces and not delete_all:
        raise UsageError("-A needs --all")
    options = applying.DeleteOptions(names, filenames, recursive, dry_run, ignore_not_found,
                                     delete_all, all_namespaces)
    count = 0

    def deleted(name: str) -> None:
        nonlocal count
        count += 1
        click.echo(f'{applying.RESOURCE_NAME} "{name}" deleted{_dry_suffix(dry_run)}')

    applying.delete(Scope(kubeconfig, context, namespace), options, deleted=deleted,
                    skipped=lambda note: click.echo(note, err=True))
    if delete_all and not count:
        click.echo("No resources found")


@click.command()
@click.option("-f", "--filename", "changes", multiple=True, required=True, type=click.Path(),
              help="The CHANGE: files, directories or - (stdin); repeatable.")
@click.option("-R", "--recursive", is_flag=True, help="Recurse into directories.")
@click.option("--local", is_flag=True, help="No cluster: the current state is --base.")
@click.option("--base", "base", multiple=True, type=click.Path(),
              help="With --local: the current state (files, directories); repeatable.")
@cluster_options
@click.option("-A", "--all-namespaces", is_flag=True,
              help="Compare every namespace (default: the namespaces the change can reach).")
@mesh_options
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]),
              default="text", show_default=True)
@click.option("--precedence", type=PRECEDENCE, default=None)
@click.option("--field-manager", default="kubectl-meshcfg", show_default=True,
              help="The field manager whose server-side apply is predicted (live).")
@click.option("--force-conflicts", is_flag=True,
              help="Predict an apply that takes over fields other managers own (live).")
def diff(changes: tuple[str, ...], recursive: bool, local: bool, base: tuple[str, ...],
         kubeconfig: str | None, context: str | None, namespace: str | None,
         all_namespaces: bool, istio_namespace: str, root_namespace: str | None, fmt: str,
         precedence: str | None, field_manager: str, force_conflicts: bool) -> None:
    """Which targets' effective sidecar config would change, field by field, if CHANGE were
    applied (live: as a server-side apply dry run stores it, so diff predicts apply; with
    --local: objects of the same name replaced). Exit 3 when something changes."""
    scope = Scope(kubeconfig, context, namespace, all_namespaces=all_namespaces, local=local,
                  filenames=base, recursive=recursive, istio_namespace=istio_namespace,
                  root_namespace=root_namespace)
    result = diffing.diff(scope, diffing.DiffOptions(changes, base, recursive, precedence,
                                                     field_manager, force_conflicts))
    if fmt == "text":
        click.echo(output.diff_text(result), nl=False)
    else:
        click.echo(output.dump(result, fmt), nl=False)
    if result["items"]:
        raise CheckFound()


COMMANDS = (apply, delete, diff)
