"""render and sync."""

from __future__ import annotations

from typing import Any

import click

from ..app import render as rendering
from ..app import sync as syncing
from ..core.errors import Failed
from . import output
from .options import DRY_RUN, PRECEDENCE, make_scope, scope_options, target_options, target_query


@click.command()
@target_options
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
@click.option("--agent-image", default=None,
              help="Image that delivers meshcfg-drain (default: spec.lifecycle.drainAgent.image, "
                   "else the release image).")
@click.option("--merge", is_flag=True,
              help="Print the whole object with the apply configuration merged in (e.g. to pipe "
                   "into istioctl kube-inject).")
def render(target: tuple[str, ...], selector: str | None, fmt: str, precedence: str | None,
           agent_image: str | None, merge: bool, **kwargs: Any) -> None:
    """Print the apply configuration that makes TARGET's effective config real on stock
    Istio: sidecar annotations, proxy.istio.io/config, istio-proxy/istio-init overrides."""
    result = rendering.render(make_scope(kwargs), target_query(target, selector, precedence),
                              agent_image, merge)
    for note in result.notes:
        click.echo(f"warning: {note}", err=True)
    if fmt == "json":
        click.echo(output.dump(output.as_list(result.bodies, result.named), "json"), nl=False)
    else:
        click.echo(output.dump_stream(result.bodies), nl=False)


@click.command()
@scope_options
@click.option("-l", "--selector", default=None, help="Label selector for workloads.")
@click.option("--precedence", type=PRECEDENCE, default=None)
@click.option("--dry-run", type=DRY_RUN, default="none", show_default=True)
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns.")
@click.option("--restart", is_flag=True,
              help="Also roll each changed workload, as kubectl rollout restart does.")
@click.option("--agent-image", default=None, help="Image that delivers meshcfg-drain.")
def sync(selector: str | None, precedence: str | None, dry_run: str, force_conflicts: bool,
         restart: bool, agent_image: str | None, **kwargs: Any) -> None:
    """Server-side apply the rendered config to every workload whose config differs."""
    options = syncing.SyncOptions(selector, precedence, dry_run, force_conflicts, restart,
                                  agent_image)
    report = syncing.sync(make_scope(kwargs), options)
    suffix = "" if dry_run == "none" else f" ({dry_run} dry run)"
    for outcome in report.outcomes:
        name = syncing.describe(outcome.planned.target)
        if outcome.error:
            click.echo(f"{name}: not synced: {outcome.error.removeprefix('error: ')}", err=True)
            continue
        click.echo(f"{name} synced{suffix}" + (" and restarted" if restart and not suffix else ""))
        for path, before, after in outcome.planned.changes:
            click.echo(f"  {path}: {syncing.short(before)} -> {syncing.short(after)}")
    for target, why in report.skipped:
        click.echo(f"{syncing.describe(target)} skipped: {why}", err=True)
    for target, note in report.notes:
        click.echo(f"warning: {syncing.describe(target)}: {note}", err=True)
    click.echo(f"{len(report.outcomes) - report.failed} synced, {report.unchanged} unchanged, "
               f"{report.failed} failed, {len(report.skipped)} skipped{suffix}")
    if report.failed:
        raise Failed()


COMMANDS = (render, sync)
