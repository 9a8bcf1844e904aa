"""get."""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem

from ..app import get as getting
from ..core import jsonpath
from ..core.listing import parse_config_args
from . import output
from .complete import complete_config
from .explain import no_targets
from .options import make_scope, scope_options


class _GetFormat(click.ParamType):  # type: ignore[type-arg]
    """-o: a fixed format, or jsonpath=TEMPLATE / custom-columns=SPEC as kubectl takes them."""

    name = "format"
    fixed = ("table", "wide", "yaml", "json", "name")
    templated = ("jsonpath=", "custom-columns=")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text in self.fixed or (text.startswith(self.templated) and "=" in text and
                                  text.split("=", 1)[1]):
            return text
        self.fail(f"{text!r} is not one of {', '.join(self.fixed)}, jsonpath=TEMPLATE or "
                  "custom-columns=SPEC", param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[CompletionItem[str]]:
        return [CompletionItem(v) for v in (*self.fixed, *self.templated) if v.startswith(incomplete)]


GET_FORMAT = _GetFormat()


@click.command()
@click.argument("args", nargs=-1, metavar="[spc] [NAME]...", shell_complete=complete_config)
@scope_options
@click.option("-l", "--selector", default=None, help="Label selector for the configs.")
@click.option("-o", "--output", "fmt", type=GET_FORMAT, default="table", show_default=True,
              help="table, wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=SPEC.")
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
    kind, _, template = fmt.partition("=")
    listed = getting.get(scope, names, selector, kind, show_labels)
    if kind in ("table", "wide"):
        if not listed.configs:
            no_targets(scope)
            return
        click.echo("\n".join(output.table(listed.rows[1:] if no_headers else listed.rows)))
    elif kind == "name":
        for config in listed.configs:
            click.echo(f"sidecarproxyconfig.meshcfg.io/{config.name}")
    else:
        docs = [output.without_managed_fields(c.raw, show_managed_fields) for c in listed.configs]
        if kind == "custom-columns":
            rows = jsonpath.column_rows(jsonpath.custom_columns(template), docs)
            click.echo("\n".join(output.table(rows[1:] if no_headers else rows)))
        elif kind == "jsonpath":
            document = docs[0] if len(names) == 1 and len(docs) == 1 else _list(docs)
            click.echo(jsonpath.render(jsonpath.parse(template), document), nl=False)
        else:
            click.echo(output.dump(output.as_list(docs, len(names) == 1), kind), nl=False)


def _list(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """What kubectl hands a template for several objects."""
    return {"apiVersion": "v1", "items": docs, "kind": "List", "metadata": {"resourceVersion": ""}}




COMMANDS = (get,)
