"""Command line of ``meshcfg-drain``; every flag has a ``MESHCFG_DRAIN_*`` twin.

    meshcfg-drain prestop [flags]       # the istio-proxy preStop hook
    meshcfg-drain census [-o json]      # what the agent would count right now
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from drain_agent import __version__
from drain_agent.census import DEFAULT_EXCLUDED_PORTS, DEFAULT_PROXY_NAMES, Census, parse_ports
from drain_agent.deadline import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_MIN_DRAIN_SECONDS,
    EXTRA_RESERVE_SECONDS,
    parse_duration,
)
from drain_agent.envoy_admin import DEFAULT_STATUS_PORT
from drain_agent.events import DEFAULT_FIELD_PATH
from drain_agent.jsonlog import JsonLog
from drain_agent.kubeapi import SA_DIR, default_server
from drain_agent.status import ExitStatus

ENV_PREFIX = "MESHCFG_DRAIN_"
PROXY_CONTAINER = "istio-proxy"


class ParserExit(Exception):
    """argparse wants to stop (``--help``, ``--version``, a usage error): ``main`` decides."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message)
        self.status = ExitStatus.USAGE if status else ExitStatus.OK
        self.message = message


class Parser(argparse.ArgumentParser):
    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ParserExit(status, message)


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _ports(text: str) -> frozenset[int]:
    return parse_ports(text)


def _backend(text: str) -> str:
    if text not in ("auto", "netlink", "proc"):
        raise ValueError("one of auto, netlink, proc")
    return text


def _names(text: str) -> tuple[str, ...]:
    return tuple(n for n in (p.strip() for p in text.split(",")) if n)


def _from_proxy_config(key: str) -> str | None:
    """Istio freezes the effective ProxyConfig into the proxy's PROXY_CONFIG env."""
    raw = os.environ.get("PROXY_CONFIG")
    if not raw:
        return None
    try:
        value = json.loads(raw).get(key)
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


def _native(text: str) -> bool | None:
    """true, false, or auto (None): what Istio's injector did, from ``--istio-status``."""
    return None if text.strip().lower() == "auto" else _bool(text)


def native_from_status(status: str) -> bool:
    """The injector lists the containers it added in ``sidecar.istio.io/status``: a native
    sidecar is an init container named istio-proxy (Istio's ``getInjectionStatus``)."""
    try:
        inits = json.loads(status).get("initContainers") or []
    except (ValueError, AttributeError):
        return False
    return isinstance(inits, list) and PROXY_CONTAINER in inits


def field_path(native: bool) -> str:
    return f"spec.initContainers{{{PROXY_CONTAINER}}}" if native else DEFAULT_FIELD_PATH


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"not a port: {text!r}")
    return port


class _Flags:
    """Declares a flag whose default comes from its environment twin."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.converters: dict[str, Callable[[str], Any]] = {}

    def add(
        self,
        flag: str,
        conv: Callable[[str], Any],
        default: str | None,
        help: str,
        env_fallbacks: Sequence[str] = (),
    ) -> None:
        env = env_name(flag)
        raw = os.environ.get(env)
        for fallback in env_fallbacks:
            if raw is None:
                raw = os.environ.get(fallback)
        if raw is None:
            raw = default
        dest = flag.lstrip("-").replace("-", "_")
        envs = ", ".join([env, *env_fallbacks])
        shown = f" (env {envs}; default {default!r})"
        self.parser.add_argument(flag, dest=dest, type=str, default=raw, help=help + shown)
        self.converters[dest] = conv

    def convert(self, ns: argparse.Namespace) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for dest, conv in self.converters.items():
            raw = getattr(ns, dest)
            try:
                out[dest] = None if raw is None else conv(raw)
            except ValueError as e:
                self.parser.error(f"--{dest.replace('_', '-')}: {e}")
        return out


def _common(p: Parser) -> _Flags:
    f = _Flags(p)
    f.add("--proxy-names", _names, ",".join(DEFAULT_PROXY_NAMES),
          "process names whose sockets are the proxy's own (comma-separated)")
    f.add("--exclude-ports", _ports, DEFAULT_EXCLUDED_PORTS,
          "local ports never counted (Istio's own ports)")
    f.add("--app-ports", _ports, "",
          "extra application ports (inbound); listening ports are found automatically")
    f.add("--count-close-wait", _bool, "false", "also count CLOSE_WAIT sockets")
    f.add("--net-dir", str, "/proc/net",
          "where the tcp and tcp6 tables are read (another netns: /proc/PID/net)")
    f.add("--backend", _backend, "auto",
          "auto (netlink sock_diag for this netns, else /proc), netlink or proc")
    return f


def build_parser() -> tuple[Parser, dict[str, _Flags]]:
    parser = Parser(
        prog="meshcfg-drain",
        description="preStop drain agent for istio-proxy: waits for in-flight connections "
        "within the pod's real deadline and reports with Kubernetes Events.",
    )
    parser.add_argument("--version", action="version", version=f"meshcfg-drain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    pre = sub.add_parser("prestop", help="run as the proxy container's preStop hook")
    fp = _common(pre)
    fp.add("--poll-interval", parse_duration, "200ms", "time between two censuses")
    fp.add("--min-drain", parse_duration, f"{DEFAULT_MIN_DRAIN_SECONDS:g}s",
           "wait at least this long before returning (late requests from clients that "
           "have not yet seen the endpoint removal; pilot-agent's MINIMUM_DRAIN_DURATION)")
    fp.add("--grace-period", parse_duration, f"{DEFAULT_GRACE_SECONDS}s",
           "the pod's grace period, used when deletionTimestamp cannot be read")
    fp.add("--termination-drain-duration", parse_duration,
           _from_proxy_config("terminationDrainDuration") or "5s",
           "pilot-agent's drain after SIGTERM, reserved at the end (default: the "
           "terminationDrainDuration in Istio's PROXY_CONFIG env, else 5s)")
    fp.add("--extra-reserve", parse_duration, f"{EXTRA_RESERVE_SECONDS}s",
           "reserved on top of terminationDrainDuration (kubelet's 2 s floor, skew)")
    fp.add("--drain-listeners", _bool, "true",
           "POST /drain_listeners?inboundonly&graceful to the admin endpoint first (native "
           "sidecar: POST /drain to pilot-agent's status port, as Istio's own hook does)")
    fp.add("--native-sidecar", _native, "false",
           "the proxy is a native sidecar (restartable init container): kubelet sends it "
           "SIGTERM only after the application has exited; auto: decided from --istio-status")
    fp.add("--istio-status", str, "",
           "the pod's sidecar.istio.io/status annotation (downward API), read by "
           "--native-sidecar=auto: native when the injector added istio-proxy as an init "
           "container")
    fp.add("--use-stats", _bool, "true",
           "ask the admin /stats whether requests are in flight (idle keep-alive detection)")
    fp.add("--admin-url", str, "http://127.0.0.1:15000", "Envoy admin endpoint")
    fp.add("--admin-timeout", parse_duration, "250ms", "timeout of one admin call")
    fp.add("--api-server", str, default_server(),
           "Kubernetes API URL (default from KUBERNETES_SERVICE_HOST/PORT)")
    fp.add("--token-file", str, f"{SA_DIR}/token", "service account token")
    fp.add("--ca-file", str, f"{SA_DIR}/ca.crt", "CA bundle of the API server")
    fp.add("--api-timeout", parse_duration, "500ms", "timeout of one API call")
    fp.add("--pod-name", str, os.environ.get("POD_NAME", ""), "pod name (downward API POD_NAME)")
    fp.add("--pod-namespace", str, os.environ.get("POD_NAMESPACE", ""),
           "pod namespace (downward API POD_NAMESPACE)")
    fp.add("--events", _bool, "true", "post Events on the pod")
    fp.add("--field-path", str, "auto",
           "the Events' involvedObject.fieldPath (auto: spec.containers{istio-proxy}, for a "
           "native sidecar spec.initContainers{istio-proxy})")
    fp.add("--status-port", _port, _from_proxy_config("statusPort") or str(DEFAULT_STATUS_PORT),
           "pilot-agent's status port: when it closes, pilot-agent got SIGTERM and kubelet no "
           "longer waits for the hook (default: statusPort of PROXY_CONFIG, else 15020; 0: off)")
    fp.add("--container-log", str, "/proc/1/fd/1",
           "also write the JSON lines here when writable (empty: only stdout)")
    fp.add("--state-dir", str, os.environ.get("TMPDIR", "/tmp"),
           "where a second run of the hook finds the first one's start (empty: nowhere)")

    cen = sub.add_parser("census", help="print the current classification")
    fc = _common(cen)
    cen.add_argument("-o", "--output", choices=("text", "json"), default="text")

    ins = sub.add_parser("install", help="copy this binary to DEST (delivery init container)")
    ins.add_argument("destination", help="e.g. /meshcfg/meshcfg-drain on a shared emptyDir")
    return parser, {"prestop": fp, "census": fc}


def census_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The flags both commands pass to the census."""
    return {"proxy_names": values["proxy_names"], "excluded_ports": values["exclude_ports"],
            "app_ports": values["app_ports"], "count_close_wait": values["count_close_wait"],
            "net_dir": values["net_dir"], "backend": values["backend"]}


def cmd_census(values: dict[str, Any], output: str) -> ExitStatus:
    c = Census(**census_settings(values), all_states=True)
    res = c.run()
    if output == "json":
        print(json.dumps(res.to_dict(), indent=2))
        return ExitStatus.OK
    print(
        f"in flight: {res.total} (inbound {res.inbound}, outbound {res.outbound}); "
        f"excluded: {res.excluded_proxy} proxy-owned, {res.excluded_port} on Istio ports; "
        f"application ports: {','.join(map(str, res.app_ports)) or '-'}; "
        f"proxy pids: {','.join(map(str, res.proxy_pids)) or '-'}; backend: {res.backend}"
    )
    for conn in res.connections():
        print(f"  {conn.direction:8} {conn.state:12} {conn.local_ip}:{conn.local_port} -> "
              f"{conn.remote_ip}:{conn.remote_port} uid={conn.uid}")
    return ExitStatus.OK


def cmd_prestop(values: dict[str, Any]) -> ExitStatus:
    from drain_agent.prestop import PrestopConfig, run_prestop

    native = values["native_sidecar"]
    if native is None:
        native = native_from_status(values["istio_status"])
    cfg = PrestopConfig(
        poll_interval=max(0.01, values["poll_interval"]),
        min_drain=values["min_drain"],
        grace_period=values["grace_period"],
        termination_drain_duration=values["termination_drain_duration"],
        extra_reserve=values["extra_reserve"],
        drain_listeners=values["drain_listeners"],
        use_stats=values["use_stats"],
        admin_url=values["admin_url"],
        admin_timeout=values["admin_timeout"],
        **census_settings(values),
        api_server=values["api_server"] or None,
        token_file=values["token_file"],
        ca_file=values["ca_file"],
        api_timeout=values["api_timeout"],
        pod_name=values["pod_name"],
        pod_namespace=values["pod_namespace"],
        events=values["events"],
        field_path=field_path(native) if values["field_path"] == "auto" else values["field_path"],
        status_port=values["status_port"],
        native_sidecar=native,
        state_dir=values["state_dir"] or None,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log = JsonLog(values["container_log"] or None)
    try:
        return run_prestop(cfg, log, stop)
    finally:
        log.close()


def run(argv: Sequence[str] | None) -> ExitStatus:
    parser, flags = build_parser()
    ns = parser.parse_args(argv)
    if ns.command == "install":
        from drain_agent.install import install

        install(ns.destination)
        return ExitStatus.OK
    values = flags[ns.command].convert(ns)
    if ns.command == "census":
        return cmd_census(values, ns.output)
    return cmd_prestop(values)


def main(argv: Sequence[str] | None = None) -> ExitStatus:
    """The exit status of one command; ``__main__`` (or the console script) exits with it."""
    try:
        return run(argv)
    except ParserExit as e:
        if e.message:
            sys.stderr.write(e.message)
        return e.status
