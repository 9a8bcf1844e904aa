"""`kubectl meshcfg`: the command line. Each command shapes its flags into options,
makes one call to the app layer and prints; `MeshcfgGroup.main` is the one place that
turns an outcome into an exit status (SPEC section 3)."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from .. import __version__
from ..core import bounded
from ..core.errors import CheckFound, ExitStatus, Failed, MeshcfgError
from .examples import add_examples


@dataclass
class RunState:
    verbose: bool = False


class MeshcfgGroup(click.Group):
    """click's group, with errors mapped to one stderr line and the SPEC exit statuses."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> NoReturn:
        state = RunState()
        try:
            returned = super().main(args, prog_name, complete_var, standalone_mode=False,
                                    windows_expand_args=windows_expand_args, obj=state, **extra)
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()     # the reader (`| head -1`) has all it wants, as with kubectl
            sys.exit(ExitStatus.ERROR)
        except (CheckFound, Failed) as outcome:
            sys.exit(outcome.exit_status)
        except MeshcfgError as error:
            _report(state.verbose, *error.lines())
            sys.exit(error.exit_status)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(ExitStatus.ERROR)
        except Exception as error:  # noqa: BLE001 (the last line of defence: one line, exit 1)
            _report(state.verbose, f"error: {type(error).__name__}: {error}")
            sys.exit(ExitStatus.ERROR)
        sys.exit(returned if isinstance(returned, int) else ExitStatus.OK)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    state = ctx.find_object(RunState)
    if value and state is not None:
        state.verbose = True


def verbose_option() -> click.Option:
    """-v, accepted after the subcommand too (`kubectl meshcfg get -v`), as kubectl does."""
    return click.Option(["-v", "--verbose"], is_flag=True, expose_value=False,
                        callback=_set_verbose, is_eager=True, help="Show tracebacks on errors.")


def _report(verbose: bool, *lines: str) -> None:
    if verbose:
        traceback.print_exc(file=sys.stderr)
    for line in lines:
        click.echo(bounded.one_line(line), err=True)


@click.group(cls=MeshcfgGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(__version__, prog_name="kubectl-meshcfg")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Scoped Istio sidecar configuration: see which setting won, and why."""
    if isinstance(ctx.obj, RunState):
        ctx.obj.verbose = verbose


def _register() -> None:
    from . import (  # noqa: PLC0415 (each adds its commands)
        admission,
        complete,
        explain,
        get,
        live,
        render,
        rollout,
    )

    for module in (explain, get, live, render, admission, rollout, complete):
        for command in module.COMMANDS:
            command.params.append(verbose_option())
            add_examples(command, command.name or "")
            cli.add_command(command)
    add_examples(cli, "kubectl-meshcfg")


_register()


def main() -> None:
    """kubectl-meshcfg; run as kubectl_complete-meshcfg (a link to it, or the console script
    of that name), kubectl's plugin completion: the words so far, then the one to complete."""
    if os.path.basename(sys.argv[0]).startswith("kubectl_complete-"):
        from .complete import cobra_lines  # noqa: PLC0415

        words = sys.argv[1:] or [""]
        click.echo("\n".join(cobra_lines(cli, words[:-1], words[-1])))
        sys.exit(ExitStatus.OK)
    cli.main(prog_name="kubectl-meshcfg")


__all__ = ["MeshcfgGroup", "cli", "main"]
