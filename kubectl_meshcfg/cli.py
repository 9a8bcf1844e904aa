"""`kubectl meshcfg`: the command line. Parses flags, calls the core, prints."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from . import __version__, output
from .errors import EXIT_FOUND, CheckFound, InvalidInput, MeshcfgError, UsageError, exit_code_for
from .formats import PRECEDENCES
from .inventory import Inventory, TargetQuery, parse_target_args, select_targets
from .labels import parse_selector
from .model import DEFAULT_ISTIO_NAMESPACE, Target
from .resolve import Resolver

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Scope:
    """Where the objects come from and which namespace(s) the command looks at."""

    kubeconfig: str | None
    context: str | None
    namespace: str | None
    all_namespaces: bool
    local: bool
    filenames: tuple[str, ...]
    recursive: bool
    istio_namespace: str
    root_namespace: str | None

    def default_namespace(self) -> str:
        return self.namespace or "default"


def scope_options(func: F) -> F:
    options = [
        click.option("--kubeconfig", default=None,
                     help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", default=None,
                     help="Namespace (default: the context's namespace; 'default' with --local)."),
        click.option("-A", "--all-namespaces", is_flag=True, help="Look at every namespace."),
        click.option("--local", is_flag=True, help="Work on -f manifests only, no cluster."),
        click.option("-f", "--filename", "filenames", multiple=True,
                     help="File, directory or - (stdin) with manifests; repeatable."),
        click.option("-R", "--recursive", is_flag=True, help="Recurse into -f directories."),
        click.option("--istio-namespace", default=DEFAULT_ISTIO_NAMESPACE, show_default=True,
                     help="Namespace of the mesh config (ConfigMap istio, key mesh)."),
        click.option("--root-namespace", default=None,
                     help="Mesh root namespace (default: the mesh config's rootNamespace)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_scope(kwargs: dict[str, Any]) -> Scope:
    names = Scope.__dataclass_fields__
    scope = Scope(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})
    if scope.filenames and not scope.local:
        raise UsageError("-f needs --local here (the cluster commands read the cluster)")
    if scope.local and not scope.filenames:
        raise UsageError("--local needs -f PATH (files, directories or - for stdin)")
    return scope


def load(scope: Scope, query: TargetQuery | None = None) -> Inventory:
    """The inventory; live, `query` lets the loader read only the targets it names."""
    if scope.local:
        from .loader import load_inventory  # noqa: PLC0415

        return load_inventory(scope.filenames, scope.recursive, scope.default_namespace(),
                              scope.istio_namespace)
    from .kube import load_live_inventory  # noqa: PLC0415 (the client is slow to import)

    return load_live_inventory(scope, query)


def query_namespace(scope: Scope) -> str | None:
    if scope.all_namespaces:
        return None
    if scope.local:
        return scope.default_namespace()
    from .kube import current_namespace  # noqa: PLC0415

    return current_namespace(scope)


def handle_errors(func: F) -> F:
    """Map errors to one stderr line and the SPEC exit codes, in one place."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool((click.get_current_context().find_root().params or {}).get("verbose"))
        try:
            return func(*args, **kwargs)
        except CheckFound as found:
            sys.exit(found.exit_code)
        except InvalidInput as invalid:
            _report(verbose, *invalid.lines())
            sys.exit(invalid.exit_code)
        except MeshcfgError as error:
            message = str(error)
            _report(verbose, message if message.startswith("error:") else f"error: {message}")
            sys.exit(error.exit_code)
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as error:  # noqa: BLE001 (the last line of defence: one line, exit 1)
            _report(verbose, f"error: {type(error).__name__}: {error}")
            sys.exit(exit_code_for(error))

    return wrapper  # type: ignore[return-value]


def _report(verbose: bool, *lines: str) -> None:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    for line in lines:
        click.echo(line, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(__version__, prog_name="kubectl-meshcfg")
def cli(verbose: bool) -> None:
    """Scoped Istio sidecar configuration: see which setting won, and why."""


def target_options(func: F) -> F:
    """TARGET (TYPE/NAME, TYPE NAME or TYPE), the scope flags, -l and --precedence."""
    func = click.option("--precedence", type=click.Choice(PRECEDENCES), default=None,
                        help="Override the global object's spec.precedence.")(func)
    func = click.option("-l", "--selector", default=None, help="Label selector for targets.")(func)
    func = scope_options(func)
    return click.argument("target", nargs=-1)(func)


@dataclass(frozen=True)
class Chosen:
    """The targets a command was asked about, and the resolver to resolve them with."""

    targets: list[Target]
    resolver: Resolver
    named: bool                 # a single TYPE/NAME was asked for


def choose_targets(scope: Scope, target: tuple[str, ...], selector: str | None,
                   precedence: str | None) -> Chosen:
    kind, name = parse_target_args(target)
    query = TargetQuery(kind=kind, name=name, namespace=query_namespace(scope),
                        selector=parse_selector(selector) if selector else None)
    inventory = load(scope, query)
    return Chosen(select_targets(inventory, query), make_resolver(inventory, scope, precedence),
                  name is not None)


@cli.command()
@target_options
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]),
              default="text", show_default=True)
@handle_errors
def explain(target: tuple[str, ...], selector: str | None, fmt: str, precedence: str | None,
            **kwargs: Any) -> None:
    """Show each sidecar field of TARGET (pod/NAME, deployment/NAME, ...), its value, the
    source that set it and what it shadowed. With no TARGET: every workload and unowned pod."""
    scope = make_scope(kwargs)
    results, named = _resolve_targets(scope, target, selector, precedence)
    if fmt == "text":
        if not results:
            _no_targets(scope)
        click.echo("\n".join(output.explain_text(r) for r in results), nl=False)
    else:
        document = output.as_list(results, named)
        if fmt == "json":   # one field per line, C-encoded: 10,000 pods in about a second
            from .jsonfast import dumps  # noqa: PLC0415

            click.echo(dumps(document), nl=False)
        else:
            click.echo(output.dump(document, fmt), nl=False)


@cli.command()
@target_options
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]),
              default="text", show_default=True)
@handle_errors
def lint(target: tuple[str, ...], selector: str | None, fmt: str, precedence: str | None,
         **kwargs: Any) -> None:
    """Every warning for the targets; exit 3 when there is any."""
    scope = make_scope(kwargs)
    results, _ = _resolve_targets(scope, target, selector, precedence)
    if fmt == "text":
        click.echo(output.lint_text(results), nl=False)
    else:
        report = [{"target": r["target"], "warnings": r["warnings"]} for r in results]
        click.echo(output.dump({"kind": "List", "items": report}, fmt), nl=False)
    if any(r["warnings"] for r in results):
        raise CheckFound()


def _resolve_targets(scope: Scope, target: tuple[str, ...], selector: str | None,
                     precedence: str | None) -> tuple[list[dict[str, Any]], bool]:
    chosen = choose_targets(scope, target, selector, precedence)
    return chosen.resolver.resolve_all(chosen.targets), chosen.named


def make_resolver(inventory: Inventory, scope: Scope, precedence: str | None) -> Resolver:
    return Resolver(inventory.configs, inventory.mesh, root_namespace=scope.root_namespace,
                    precedence=precedence, istio_namespace=scope.istio_namespace)


def _no_targets(scope: Scope) -> None:
    where = "any namespace" if scope.all_namespaces else f"{query_namespace(scope)} namespace"
    click.echo(f"No resources found in {where}.", err=True)


@cli.command()
@click.argument("name", required=False)
@scope_options
@click.option("-l", "--selector", default=None, help="Label selector for the configs.")
@click.option("-o", "--output", "fmt",
              type=click.Choice(["table", "wide", "yaml", "json", "name"]), default="table",
              show_default=True)
@handle_errors
def get(name: str | None, selector: str | None, fmt: str, **kwargs: Any) -> None:
    """List SidecarProxyConfigs with their scope, selector, fields, matched pods and conflicts."""
    from .listing import config_rows, select_configs  # noqa: PLC0415

    scope = make_scope(kwargs)
    inventory = load(scope)
    configs = select_configs(inventory, query_namespace(scope), name, selector)
    if fmt in ("table", "wide"):
        if not configs:
            _no_targets(scope)
            return
        rows = config_rows(inventory, configs, make_resolver(inventory, scope, None),
                           wide=fmt == "wide", with_namespace=scope.all_namespaces)
        click.echo("\n".join(output.table(rows)))
    elif fmt == "name":
        for config in configs:
            click.echo(f"sidecarproxyconfig.meshcfg.io/{config.name}")
    else:
        docs = [dict(c.raw) for c in configs]
        click.echo(output.dump(output.as_list(docs, name is not None), fmt), nl=False)


from . import live_cli  # noqa: E402,F401 (registers apply, delete, diff on `cli`)


@cli.command()
@target_options
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
@click.option("--agent-image", default=None,
              help="Image that delivers meshcfg-drain (default: spec.lifecycle.drainAgent.image, "
                   "else the release image).")
@click.option("--merge", is_flag=True,
              help="Print the whole object with the apply configuration merged in (e.g. to pipe "
                   "into istioctl kube-inject).")
@handle_errors
def render(target: tuple[str, ...], selector: str | None, fmt: str, precedence: str | None,
           agent_image: str | None, merge: bool, **kwargs: Any) -> None:
    """Print the apply configuration that makes TARGET's effective config real on stock
    Istio: sidecar annotations, proxy.istio.io/config, istio-proxy/istio-init overrides."""
    from . import render as rendering  # noqa: PLC0415

    chosen = choose_targets(make_scope(kwargs), target, selector, precedence)
    bodies = []
    for one in chosen.targets:
        rendered = rendering.render(one, chosen.resolver.resolve(one),
                                    agent_image or rendering.DEFAULT_AGENT_IMAGE)
        for note in rendered.notes:
            click.echo(f"warning: {one.ref} ({one.namespace}): {note}", err=True)
        body = rendered.apply_config
        bodies.append(rendering.merge_apply(one.raw, body) if merge else body)
    if fmt == "json":
        click.echo(output.dump(output.as_list(bodies, chosen.named), "json"), nl=False)
    else:
        click.echo(output.dump_stream(bodies), nl=False)


@cli.command()
@scope_options
@click.option("-l", "--selector", default=None, help="Label selector for workloads.")
@click.option("--precedence", type=click.Choice(PRECEDENCES), default=None)
@click.option("--dry-run", type=click.Choice(["none", "client", "server"]), default="none",
              show_default=True)
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns.")
@click.option("--restart", is_flag=True,
              help="Also roll each changed workload, as kubectl rollout restart does.")
@click.option("--agent-image", default=None, help="Image that delivers meshcfg-drain.")
@handle_errors
def sync(selector: str | None, precedence: str | None, dry_run: str, force_conflicts: bool,
         restart: bool, agent_image: str | None, **kwargs: Any) -> None:
    """Server-side apply the rendered config to every workload whose config differs."""
    from . import render as rendering  # noqa: PLC0415
    from . import sync as syncing  # noqa: PLC0415
    from .kube import api_for  # noqa: PLC0415

    scope = make_scope(kwargs)
    if scope.local:
        raise UsageError("sync writes to the cluster; use render --local to see the result offline")
    query = TargetQuery(namespace=query_namespace(scope),
                        selector=parse_selector(selector) if selector else None)
    inventory = load(scope)
    inventory.targets = select_targets(inventory, query)
    resolver = make_resolver(inventory, scope, precedence)
    planned, skipped = syncing.plan(inventory, resolver, agent_image or rendering.DEFAULT_AGENT_IMAGE)
    outcomes = syncing.execute(api_for(scope), planned, force_conflicts, dry_run, restart)
    suffix = "" if dry_run == "none" else f" ({dry_run} dry run)"
    for outcome in outcomes:
        name = syncing.describe(outcome.planned.target)
        if outcome.error:
            click.echo(f"{name}: not synced: {outcome.error.removeprefix('error: ')}", err=True)
            continue
        click.echo(f"{name} synced{suffix}" + (" and restarted" if restart and not suffix else ""))
        for path, before, after in outcome.planned.changes:
            click.echo(f"  {path}: {syncing.short(before)} -> {syncing.short(after)}")
    for target, why in skipped:
        click.echo(f"{syncing.describe(target)} skipped: {why}", err=True)
    failed = sum(1 for o in outcomes if o.error)
    unchanged = sum(1 for p in planned if not p.changed)
    click.echo(f"{len(outcomes) - failed} synced, {unchanged} unchanged, {failed} failed, "
               f"{len(skipped)} skipped{suffix}")
    if failed:
        sys.exit(1)


def main() -> None:
    cli(prog_name="kubectl-meshcfg")


__all__ = ["cli", "main", "EXIT_FOUND"]
