"""get."""

from __future__ import annotations

from typing import Any

import click

from ..app import get as getting
from ..core.listing import parse_config_args
from . import output
from .complete import complete_config
from .explain import no_targets
from .options import make_scope, scope_options


@click.command()
@click.argument("args", nargs=-1, metavar="[spc] [NAME]...", shell_complete=complete_config)
@scope_options
@click.option("-l", "--selector", default=None, help="Label selector for the configs.")
@click.option("-o", "--output", "fmt",
              type=click.Choice(["table", "wide", "yaml", "json", "name"]), default="table",
              show_default=True)
@click.option("--no-headers", is_flag=True, help="Table output without the header line.")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column to the table.")
@click.option("--show-managed-fields", is_flag=True,
              help="Keep metadata.managedFields in -o yaml|json (hidden by default, as kubectl).")
def get(args: tuple[str, ...], selector: str | None, fmt: str, no_headers: bool,
        show_labels: bool, show_managed_fields: bool, **kwargs: Any) -> None:
    """List SidecarProxyConfigs with their scope, selector, fields, matched pods and conflicts.

    Takes the objects as kubectl does: `get`, `get spc`, `get spc NAME...`, `get spc/NAME`,
    `get sidecarproxyconfigs.meshcfg.io NAME`, or bare NAMEs."""
    scope = make_scope(kwargs)
    names = parse_config_args(args)
    listed = getting.get(scope, names, selector, fmt, show_labels)
    if fmt in ("table", "wide"):
        if not listed.configs:
            no_targets(scope)
            return
        click.echo("\n".join(output.table(listed.rows[1:] if no_headers else listed.rows)))
    elif fmt == "name":
        for config in listed.configs:
            click.echo(f"sidecarproxyconfig.meshcfg.io/{config.name}")
    else:
        docs = [output.without_managed_fields(c.raw, show_managed_fields) for c in listed.configs]
        click.echo(output.dump(output.as_list(docs, len(names) == 1), fmt), nl=False)


COMMANDS = (get,)
