"""Envoy stand-in under the real pilot-agent (its PROXY_CONFIG ``binaryPath``).

Real Envoy cannot run on this machine (no binary, nothing to build it from in Go), so
this process takes its place, started by Istio's real pilot-agent with real Envoy's
command line, and obeys the bootstrap pilot-agent wrote (``-c``):

* ``/stats`` exports exactly what the bootstrap's ``stats_config.stats_matcher``
  inclusion list (prefix, suffix, safe_regex as a full match, exact, contains) lets
  through; a name it rejects is never recorded (Envoy gives it a null stat);
* in real Envoy's naming: ``listener.<addr>.downstream_cx_active`` and a copy per worker
  thread (``listener.<addr>.worker_N.…``; ``--concurrency``, else one per CPU), the
  admin's own counters (``listener.admin[.main_thread]``, ``http.admin``; our own
  request is active while Envoy answers it), an internal listener holding one pipe
  connection (``listener.envoy_internal_…``, as with HBONE), ``server.state``
  (1 once draining), and the ``cluster_manager``/``listener_manager`` gauges;
* ``usedonly`` leaves out what was never written.

The data path (inbound 15006, outbound 15001, draining with ``Connection: close``) is
the harness's Envoy stand-in in proxy.py. What real Envoy would learn from istiod over
xDS (the application port, the upstream pool) comes from MESHCFG_ENVOY_* variables,
which pilot-agent passes through to Envoy with the rest of its environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.netns import raise_nofile, set_comm  # noqa: E402
from harness.proxy import Envoy  # noqa: E402

INTERNAL_LISTENER = "listener.envoy_internal_connect_originate.downstream_cx_active"


def stat_filter(bootstrap: dict[str, Any]) -> Any:
    """The bootstrap's inclusion list as a predicate on stat names (None: keep all)."""
    matcher = (bootstrap.get("stats_config") or {}).get("stats_matcher") or {}
    if matcher.get("reject_all"):
        return lambda name: False
    patterns = (matcher.get("inclusion_list") or {}).get("patterns")
    if patterns is None:
        return lambda name: True
    tests = []
    for p in patterns:
        if "prefix" in p:
            tests.append(lambda n, v=p["prefix"]: n.startswith(v))
        elif "suffix" in p:
            tests.append(lambda n, v=p["suffix"]: n.endswith(v))
        elif "exact" in p:
            tests.append(lambda n, v=p["exact"]: n == v)
        elif "contains" in p:
            tests.append(lambda n, v=p["contains"]: v in n)
        elif "safe_regex" in p:
            tests.append(lambda n, r=re.compile(p["safe_regex"]["regex"]): bool(r.fullmatch(n)))
    return lambda name: any(t(name) for t in tests)


class BootstrapEnvoy(Envoy):
    def __init__(self, args: argparse.Namespace, bootstrap: dict[str, Any], workers: int) -> None:
        super().__init__(args)
        self.allowed = stat_filter(bootstrap)
        self.workers = max(1, workers)
        self.used: set[str] = set()
        self._conn_worker: dict[tuple[int, str], int] = {}
        self._accepted = 0
        for name, value in (("server.state", 0), ("server.live", 1),
                            ("listener_manager.workers_started", 1),
                            ("listener_manager.total_listeners_active", 4),
                            ("cluster_manager.active_clusters", 3),
                            ("cluster.xds-grpc.upstream_cx_active", 0),
                            (INTERNAL_LISTENER, 1)):
            self.g(name, value)

    def g(self, name: str, delta: int) -> None:
        self._record(name, delta)
        if name.startswith("listener.") and name.endswith(".downstream_cx_active"):
            base = name[: -len(".downstream_cx_active")]
            if base == "listener.admin":
                self._record("listener.admin.main_thread.downstream_cx_active", delta)
                self._record("http.admin.downstream_cx_active", delta)
            elif not base.startswith("listener.envoy_internal_"):
                # a connection stays on the worker that accepted it (round robin here)
                key = (id(asyncio.current_task()), base)
                if delta > 0:
                    worker = self._conn_worker[key] = self._accepted % self.workers
                    self._accepted += 1
                else:
                    worker = self._conn_worker.pop(key, 0)
                self._record(f"{base}.worker_{worker}.downstream_cx_active", delta)

    def _record(self, name: str, delta: int) -> None:
        if self.allowed(name):
            self.gauges[name] += delta
            self.used.add(name)

    def render_stats(self, flt: str) -> str:
        if any(self.draining.values()):
            self.gauges["server.state"] = 1 if "server.state" in self.used else 0
        self.g("http.admin.downstream_rq_active", 1)  # this request, while it is answered
        try:
            pattern = re.compile(flt) if flt else None
            lines = [f"{k}: {self.gauges[k]}" for k in sorted(self.used)
                     if pattern is None or pattern.search(k)]
        finally:
            self.g("http.admin.downstream_rq_active", -1)
        return "\n".join(lines) + ("\n" if lines else "")


def parse_envoy_args(argv: list[str]) -> tuple[argparse.Namespace, dict[str, Any]]:
    p = argparse.ArgumentParser(prog="envoy")
    p.add_argument("-c", "--config-path", required=True)
    p.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    known, _ = p.parse_known_args(argv)  # --drain-time-s, --drain-strategy, -l, ...
    with open(known.config_path, encoding="utf-8") as fh:
        bootstrap = json.load(fh)
    admin = bootstrap["admin"]["address"]["socket_address"]
    if (admin.get("address"), int(admin.get("port_value", 0))) != ("127.0.0.1", 15000):
        raise SystemExit(f"envoy stand-in: admin must be 127.0.0.1:15000, not {admin}")
    args = argparse.Namespace(
        app_port=int(os.environ.get("MESHCFG_ENVOY_APP_PORT", "8080")),
        pool_prewarm=int(os.environ.get("MESHCFG_ENVOY_POOL_PREWARM", "2")),
        stats=os.environ.get("MESHCFG_ENVOY_NO_STATS", "") != "1", admin=True)
    return argparse.Namespace(envoy=args, concurrency=known.concurrency), bootstrap


def main() -> None:
    set_comm("envoy")
    raise_nofile()
    ns, bootstrap = parse_envoy_args(sys.argv[1:])
    print(json.dumps({"who": "envoy", "event": "bootstrap",
                      "stats_matcher": (bootstrap.get("stats_config") or {}).get("stats_matcher"),
                      "concurrency": ns.concurrency}), flush=True)
    asyncio.run(BootstrapEnvoy(ns.envoy, bootstrap, ns.concurrency).main())


if __name__ == "__main__":
    main()
