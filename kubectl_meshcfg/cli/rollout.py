"""rollout-test: restart a workload under load; the report as text (like `istioctl x
describe`), JSON or YAML; exit 0 when no request failed, 3 when some did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from ..app import rollout_test as testing
from ..app.scope import Scope
from ..core import rollout
from ..core.errors import CheckFound
from ..core.formats import parse_duration
from . import output
from .complete import complete_target
from .options import cluster_options


class _Duration(click.ParamType):  # type: ignore[type-arg]
    """A Go duration as kubectl takes --timeout (30s, 5m, 1h); a bare number is seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float | int):
            return float(value)
        text = str(value)
        seconds = float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)
        if seconds is None or seconds <= 0:
            self.fail(f"{text!r} is not a positive duration (examples: 90s, 10m)", param, ctx)
        return seconds


DURATION = _Duration()


@click.command("rollout-test")
@click.argument("target", nargs=-1, required=True, shell_complete=complete_target)
@cluster_options
@click.option("--delete-pods", "method", flag_value="delete-pods",
              help="Delete the old pods one at a time instead of a rollout restart.")
@click.option("--evict", "method", flag_value="evict",
              help="Evict the old pods one at a time (the Eviction API, as kubectl drain).")
@click.option("--via", type=click.Choice(["auto", "service", "endpoints"]), default="auto",
              show_default=True,
              help="service: the Service's cluster IP; endpoints: straight to the ready "
                   "endpoints of its EndpointSlices (no Service routing needed); auto: "
                   "endpoints for a headless Service, else service.")
@click.option("--service", default=None, help="The Service to send through (default: the one "
                                              "that selects the workload's pods).")
@click.option("--port", default=None, help="Service port name or number (default: the first).")
@click.option("--path", "path", default="/", show_default=True, help="HTTP path to GET.")
@click.option("-c", "--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Requests in flight at once (one connection each).")
@click.option("--qps", type=click.FloatRange(0.1, 2000), default=20.0, show_default=True,
              help="At most this many requests a second in all.")
@click.option("--max-request-time", type=DURATION, default="60s", show_default=True,
              help="A request still unanswered after this counts as failed (timeout).")
@click.option("--image", default=rollout.Load.image, show_default=True,
              help="The load generator's image: any image with python3 (3.8+) on its PATH.")
@click.option("--node", default=None,
              help="Run the load generator on this node (spec.nodeName, no scheduler).")
@click.option("--timeout", type=DURATION, default="10m", show_default=True,
              help="Give up (exit 1) when the rollout and the old pods' termination take longer.")
@click.option("-y", "--yes", is_flag=True,
              help="Run even when the workload has fewer than two ready replicas.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "yaml"]),
              default="text", show_default=True)
def rollout_test(target: tuple[str, ...], kubeconfig: str | None, context: str | None,
                 namespace: str | None, method: str | None, via: str, service: str | None,
                 port: str | None, path: str, concurrency: int, qps: float,
                 max_request_time: float, image: str, node: str | None, timeout: float, yes: bool,
                 fmt: str) -> None:
    """Restart a workload while a load generator pod sends it requests, and report what
    the clients saw: requests by status and by second, each old pod's termination
    timeline (deletion, preStop, drain Events, SIGTERM, exit, SIGKILL) and warnings such
    as FailedPreStopHook. Exit 0 when every request succeeded, 3 when some failed, 1 on
    error. The generator pod is deleted at the end, Ctrl-C included."""
    load = rollout.Load(path, concurrency, qps, max_request_time, image, node)
    options = testing.RolloutTestOptions(target, method or "restart", via, service, port, load,
                                         timeout, yes)
    quiet = fmt != "text"
    report = testing.run(Scope(kubeconfig, context, namespace), options,
                         lambda line: None if quiet else click.echo(f"... {line}", err=True))
    if fmt == "text":
        click.echo(report_text(report), nl=False)
    else:
        click.echo(output.dump(report, fmt), nl=False)
    if report["verdict"]["exitCode"]:
        raise CheckFound()


def _at(value: float | None) -> str:
    return "?" if value is None else f"{value:+.1f}s"


def report_text(report: Mapping[str, Any]) -> str:
    w, via, req = report["workload"], report["via"], report["requests"]
    how = {"restart": "rollout restart", "delete-pods": "pods deleted one at a time",
           "evict": "pods evicted one at a time"}[report["method"]]
    where = (f"service/{via['service']} port {via['port']} (cluster IP)" if via["mode"] == "service"
             else f"the ready endpoints of service/{via['service']} port {via['port']} "
                  "(EndpointSlices)")
    load = report["load"]
    lines = [f"{w['kind']}: {w['name']}.{w['namespace']}",
             f"Restart: {how}; rolled out in {report['rolloutSeconds']:.1f}s; times below "
             f"are from its start ({report['startedAt']}; ~ = whole seconds)",
             f"Load: GET {load['path']} to {where}, {load['workers']} at a time, "
             f"at most {load['rate']:g}/s", "",
             f"Requests: {req['sent']} sent, {req['succeeded']} succeeded, {req['failed']} failed"]
    lines += ["  " + row for row in output.table(
        [("STATUS", "COUNT"), *((k, str(v)) for k, v in req["byStatus"].items())])]
    lines += ["", "  By second (requests started; ended: succeeded, failed):"]
    lines += ["    " + row for row in output.table(
        [("SECOND", "SENT", "SUCCEEDED", "FAILED"),
         *((f"{s['second']:+d}", str(s["sent"]), str(s["succeeded"]), str(s["failed"]))
           for s in req["bySecond"])])]
    for pod in report["pods"]:
        lines += ["", *_pod_lines(pod)]
    if report["replacements"]:
        lines += ["", "New pods serving (first seen Ready by the pod watch):"]
        lines += ["  " + row for row in output.table(
            [("AT", "POD"), *((_at(p["servingAt"]), p["name"]) for p in report["replacements"])])]
    lines += _warning_lines(report["warnings"])
    verdict = report["verdict"]
    lines += ["", f"Verdict: {verdict['result'].upper()}: {verdict['message']}"]
    return "\n".join(lines) + "\n"


def _pod_lines(pod: Mapping[str, Any]) -> list[str]:
    head = f"Old pod {pod['name']}"
    if pod["deletedAt"] is not None:
        head += f": deleted at {_at(pod['deletedAt'])}, grace {pod['gracePeriodSeconds']}s"
    if pod["goneAt"] is not None:
        head += f", gone at {_at(pod['goneAt'])}"
    rows = [(("" if e["precision"] == "ms" else "~") + _at(e["at"]), _short(e["source"]),
             e["what"]) for e in pod["timeline"]]
    return [head, *("  " + row for row in output.table([("AT", "FROM", "WHAT"), *rows]))]


def _short(source: str) -> str:
    """The report's source, as the text table names it."""
    if source.startswith("metadata.deletionTimestamp"):
        return "deletionTimestamp"
    if source.startswith("status.containerStatuses"):
        return "container status"
    return source.removeprefix("Event ").replace("watch DELETED", "pod watch")


def _warning_lines(found: Sequence[Mapping[str, Any]]) -> list[str]:
    if not found:
        return ["", "No warnings."]
    return ["", "Warnings:", *(f"  ! {w['object']}: {w['reason']} at {_at(w['at'])}: "
                               f"{w['message']}" for w in found)]


COMMANDS = (rollout_test,)
