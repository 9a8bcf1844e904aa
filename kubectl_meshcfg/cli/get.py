"""get."""

from __future__ import annotations

from typing import Any

import click

from ..app import get as getting
from . import output
from .explain import no_targets
from .options import make_scope, scope_options


@click.command()
@click.argument("name", required=False)
@scope_options
@click.option("-l", "--selector", default=None, help="Label selector for the configs.")
@click.option("-o", "--output", "fmt",
              type=click.Choice(["table", "wide", "yaml", "json", "name"]), default="table",
              show_default=True)
def get(name: str | None, selector: str | None, fmt: str, **kwargs: Any) -> None:
    """List SidecarProxyConfigs with their scope, selector, fields, matched pods and conflicts."""
    scope = make_scope(kwargs)
    listed = getting.get(scope, name, selector, fmt)
    if fmt in ("table", "wide"):
        if not listed.configs:
            no_targets(scope)
            return
        click.echo("\n".join(output.table(listed.rows)))
    elif fmt == "name":
        for config in listed.configs:
            click.echo(f"sidecarproxyconfig.meshcfg.io/{config.name}")
    else:
        docs = [dict(c.raw) for c in listed.configs]
        click.echo(output.dump(output.as_list(docs, name is not None), fmt), nl=False)


COMMANDS = (get,)
