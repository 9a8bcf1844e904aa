"""The flags commands share, turned into the app layer's options (kubectl's names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..app.explain import TargetOptions
from ..app.scope import Scope
from ..core.formats import PRECEDENCES
from ..core.model import DEFAULT_ISTIO_NAMESPACE
from .complete import complete_target

F = TypeVar("F", bound=Callable[..., Any])
DRY_RUN = click.Choice(["none", "client", "server"])
PRECEDENCE = click.Choice(PRECEDENCES)


def non_empty(_ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A flag that must not be empty (an empty field manager would reach the server)."""
    if not value.strip():
        raise click.BadParameter("must not be empty", param=param)
    return value


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def cluster_options(func: F) -> F:
    return _apply(func, [
        click.option("--kubeconfig", default=None, type=click.Path(),
                     help="Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--context", default=None, help="The kubeconfig context to use."),
        click.option("-n", "--namespace", default=None,
                     help="Namespace (default: the context's namespace; 'default' with --local)."),
    ])


def mesh_options(func: F) -> F:
    return _apply(func, [
        click.option("--istio-namespace", default=DEFAULT_ISTIO_NAMESPACE, show_default=True,
                     help="Namespace of the mesh config (ConfigMap istio, key mesh)."),
        click.option("--root-namespace", default=None,
                     help="Mesh root namespace (default: the mesh config's rootNamespace)."),
    ])


def scope_options(func: F) -> F:
    func = mesh_options(func)
    func = _apply(func, [
        click.option("-A", "--all-namespaces", is_flag=True, help="Look at every namespace."),
        click.option("--local", is_flag=True, help="Work on -f manifests only, no cluster."),
        click.option("-f", "--filename", "filenames", multiple=True, type=click.Path(),
                     help="File, directory or - (stdin) with manifests; repeatable."),
        click.option("-R", "--recursive", is_flag=True, help="Recurse into -f directories."),
    ])
    return cluster_options(func)


def target_options(func: F) -> F:
    """TARGET (TYPE/NAME, TYPE NAME or TYPE), the scope flags, -l and --precedence."""
    func = click.option("--precedence", type=PRECEDENCE, default=None,
                        help="Override the global object's spec.precedence.")(func)
    func = click.option("-l", "--selector", default=None, help="Label selector for targets.")(func)
    func = scope_options(func)
    return click.argument("target", nargs=-1, shell_complete=complete_target)(func)


_SCOPE_FIELDS = ("kubeconfig", "context", "namespace", "all_namespaces", "local", "filenames",
                 "recursive", "istio_namespace", "root_namespace")


def make_scope(kwargs: dict[str, Any]) -> Scope:
    """The Scope of a command taking scope_options (consumes those keys of kwargs)."""
    return Scope(**{k: kwargs.pop(k) for k in list(kwargs) if k in _SCOPE_FIELDS}).check_files()


def target_query(target: tuple[str, ...], selector: str | None,
                 precedence: str | None) -> TargetOptions:
    return TargetOptions(target, selector, precedence)
