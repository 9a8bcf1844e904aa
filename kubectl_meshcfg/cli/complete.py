"""Shell completion: kubectl's plugin protocol (`kubectl_complete-meshcfg ARGS... INCOMPLETE`,
cobra's `__complete` output: one `value<TAB>description` a line, then `:DIRECTIVE`) and
`completion bash|zsh|fish` scripts for running kubectl-meshcfg directly. Both ask the same
click parameters; TARGETs and SidecarProxyConfig names come from the cluster (or the
--local files) that the command line so far names."""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem, ShellComplete, get_completion_class

from ..app import complete as completing
from ..app.scope import Scope
from ..core import kinds

PROG = "kubectl-meshcfg"
COMPLETE_VAR = "_KUBECTL_MESHCFG_COMPLETE"
# cobra's ShellCompDirective bits, as kubectl reads them from the last line
DIRECTIVE_ERROR, DIRECTIVE_NO_FILES, DIRECTIVE_FILTER_DIRS = 1, 4, 16
DIRECTIVE_FILES = 0
_SCOPE_KEYS = ("kubeconfig", "context", "namespace", "all_namespaces", "local", "filenames",
               "recursive", "istio_namespace")


def _scope(ctx: click.Context) -> Scope:
    return Scope(**{k: v for k, v in ctx.params.items() if k in _SCOPE_KEYS and v is not None})


def _matching(values: list[str], incomplete: str, exclude: tuple[str, ...] = ()) -> list[str]:
    return [v for v in values if v.startswith(incomplete) and v not in exclude]


def complete_target(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """TYPE, then NAME (`deploy web`), or TYPE/NAME as one word (`deploy/web`)."""
    typed: tuple[str, ...] = ctx.params.get("target") or ()
    if "/" in incomplete:
        kind_text = incomplete.split("/", 1)[0]
        names = completing.target_names(_scope(ctx), kind_text)
        return _matching([f"{kind_text}/{n}" for n in names], incomplete, typed)
    if typed and "/" not in typed[0]:
        return _matching(completing.target_names(_scope(ctx), typed[0]), incomplete, typed)
    return _matching([kind.names[0] for kind in kinds.KINDS], incomplete)


def complete_config(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """get's `spc NAME...` / `NAME...`, delete's NAME...: SidecarProxyConfig names."""
    typed: tuple[str, ...] = ctx.params.get("args") or ctx.params.get("names") or ()
    names = completing.config_names(_scope(ctx))
    if not typed and ctx.info_name == "get":
        names = ["spc", *names]
    return _matching(names, incomplete, typed)


def cobra_lines(cli: click.Command, args: list[str], incomplete: str) -> list[str]:
    """What a cobra `__complete` prints for these words: kubectl's plugin protocol."""
    try:
        items = ShellComplete(cli, {}, PROG, COMPLETE_VAR).get_completions(args, incomplete)
    except Exception:  # noqa: BLE001 (a TAB never prints an error)
        return [f":{DIRECTIVE_ERROR}"]
    kinds_of = {item.type for item in items}
    if "file" in kinds_of:
        return [f":{DIRECTIVE_FILES}"]
    if "dir" in kinds_of:
        return [f":{DIRECTIVE_FILTER_DIRS}"]
    return [_line(item) for item in items] + [f":{DIRECTIVE_NO_FILES}"]


def _line(item: CompletionItem[Any]) -> str:
    help_text = " ".join(str(item.help or "").split())
    return f"{item.value}\t{help_text}" if help_text else str(item.value)


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print a shell completion script for kubectl-meshcfg.

    `kubectl meshcfg` completes through kubectl itself once `kubectl_complete-meshcfg` is
    on PATH (a link to kubectl-meshcfg will do); this script is for running kubectl-meshcfg
    directly."""
    shell_class = get_completion_class(shell)
    assert shell_class is not None
    click.echo(shell_class(ctx.find_root().command, {}, PROG, COMPLETE_VAR).source())


COMMANDS = (completion,)
