"""admission render / apply / diff."""

from __future__ import annotations

from typing import Any

import click

from ..app import admission as admitting
from ..app import restart as restarting
from ..app import sync as syncing
from ..core.errors import CheckFound
from . import output
from .options import DRY_RUN, PRECEDENCE, make_scope, scope_options


def _admission_options(func: Any) -> Any:
    func = click.option("--precedence", type=PRECEDENCE, default=None,
                        help="Override the global object's spec.precedence.")(func)
    func = click.option("--agent-image", default=None,
                        help="Image that delivers meshcfg-drain.")(func)
    func = click.option("--static-only", is_flag=True,
                        help="Only the params CRD, the policy and its bindings (no params).")(func)
    return scope_options(func)


def _options(precedence: str | None, agent_image: str | None,
             static_only: bool) -> admitting.AdmissionOptions:
    return admitting.AdmissionOptions(precedence, agent_image, static_only)


@click.group()
def admission() -> None:
    """GitOps mode: SidecarProxyConfigs take effect when pods are admitted (Kubernetes 1.36
    MutatingAdmissionPolicy), with no edits to workloads."""


@admission.command("render")
@_admission_options
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
def render(precedence: str | None, agent_image: str | None, static_only: bool, fmt: str,
           **kwargs: Any) -> None:
    """Print the params CRD, the MutatingAdmissionPolicy, its bindings and one params object
    per namespace (the resolved config per workload selector), for Git."""
    docs = admitting.objects(make_scope(kwargs), _options(precedence, agent_image, static_only))
    if fmt == "json":
        click.echo(output.dump(output.as_list(docs, False), "json"), nl=False)
    else:
        click.echo(output.dump_stream(docs), nl=False)


@admission.command("apply")
@_admission_options
@click.option("--dry-run", type=DRY_RUN, default="none", show_default=True)
@click.option("--force-conflicts", is_flag=True, help="Take over fields another manager owns.")
def apply(precedence: str | None, agent_image: str | None, static_only: bool, dry_run: str,
          force_conflicts: bool, **kwargs: Any) -> None:
    """Server-side apply the admission objects (field manager kubectl-meshcfg-admission)."""
    scope = make_scope(kwargs)
    applied = admitting.apply(scope, _options(precedence, agent_image, static_only), dry_run,
                              force_conflicts)
    suffix = "" if dry_run == "none" else f" ({dry_run} dry run)"
    for one in applied:
        click.echo(f"{admitting.describe(one.doc)} serverside-applied{suffix}")


@admission.command("diff")
@_admission_options
def diff(precedence: str | None, agent_image: str | None, static_only: bool,
         **kwargs: Any) -> None:
    """Show what admission apply would change; exit 3 when something would."""
    diffs = admitting.diff(make_scope(kwargs), _options(precedence, agent_image, static_only))
    for one in diffs:
        click.echo(one.text, nl=False)
    if any(one.changed for one in diffs):
        raise CheckFound()


@click.command()
@scope_options
@click.option("-l", "--selector", default=None, help="Label selector for pods.")
@click.option("--precedence", type=PRECEDENCE, default=None)
@click.option("--dry-run", type=DRY_RUN, default="none", show_default=True)
def restart(selector: str | None, precedence: str | None, dry_run: str, **kwargs: Any) -> None:
    """Roll exactly the workloads with a pod whose sidecar is stale (StaleSidecar), as
    kubectl rollout restart does: only kubectl.kubernetes.io/restartedAt changes."""
    scope = make_scope(kwargs)
    result = restarting.restart(scope, restarting.RestartOptions(selector, precedence, dry_run))
    suffix = "" if dry_run == "none" and not scope.local else " (dry run)"
    for workload in result.workloads:
        stale = result.stale_pods[(workload.namespace, workload.kind, workload.name)]
        click.echo(f"{syncing.describe(workload)} restarted{suffix}: "
                   f"{len(stale)} stale pod{'s' if len(stale) != 1 else ''}")
    for pod, why in result.skipped:
        click.echo(f"{syncing.describe(pod)} skipped: {why}", err=True)
    click.echo(f"{len(result.workloads)} restarted, {len(result.skipped)} skipped{suffix}")


COMMANDS = (admission, restart)
