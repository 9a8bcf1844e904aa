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
the harness's Envoy stand-in in proxy.py. As real Envoy's worker threads each accept on
their own ``SO_REUSEPORT`` socket, inbound 15006 is served by ``--concurrency`` worker
processes (outbound 15001 and the admin stay in the main process). Processes, not
threads, because of the file descriptors: a proxied request holds two (downstream and
upstream), and this machine's hard RLIMIT_NOFILE is 20,000 (root lacks CAP_SYS_RESOURCE
to raise it), so one process could not hold 10,000 requests (the last few got EMFILE:
the 9,991 of 10,000 of earlier runs). The workers' gauges live in shared memory, one row
per worker (only the worker writes its row); /stats sums them, and each row is that
worker's ``worker_N`` copy, as in real Envoy. What real Envoy would learn from istiod over
xDS (the application port, the upstream pool) comes from MESHCFG_ENVOY_* variables,
which pilot-agent passes through to Envoy with the rest of its environment.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from multiprocessing.sharedctypes import RawArray
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness.netns import raise_nofile, set_comm  # noqa: E402
from harness.proxy import INBOUND, Envoy, emit  # noqa: E402

INTERNAL_LISTENER = "listener.envoy_internal_connect_originate.downstream_cx_active"
INBOUND_LISTENER = "listener.0.0.0.0_15006"
# what an inbound worker records (proxy.py's names), one slot each per worker row
WORKER_GAUGES = (f"{INBOUND_LISTENER}.downstream_cx_active", f"http.{INBOUND}.downstream_cx_active",
                 f"http.{INBOUND}.downstream_rq_active", "cluster.inbound|8080||.upstream_rq_active")
DRAIN_KINDS = ("inbound", "outbound")
PR_SET_PDEATHSIG = 1


class Shared:
    """Anonymous shared memory (inherited across fork): per worker a row of gauge values
    and "written" marks, then the draining flags the admin sets."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.row = 2 * len(WORKER_GAUGES)
        self.arr = RawArray("q", workers * self.row + len(DRAIN_KINDS))

    def add(self, worker: int, name: str, delta: int) -> None:
        i = worker * self.row + WORKER_GAUGES.index(name)
        self.arr[i] += delta
        self.arr[i + len(WORKER_GAUGES)] = 1

    def rows(self) -> Iterator[tuple[int, str, int, bool]]:
        for w in range(self.workers):
            for k, name in enumerate(WORKER_GAUGES):
                i = w * self.row + k
                yield w, name, self.arr[i], bool(self.arr[i + len(WORKER_GAUGES)])


class SharedDraining:
    """Envoy's draining flags, seen by every worker (``drain_listeners`` reaches one)."""

    def __init__(self, shared: Shared) -> None:
        self.arr, self.base = shared.arr, shared.workers * shared.row

    def __getitem__(self, kind: str) -> bool:
        return bool(self.arr[self.base + DRAIN_KINDS.index(kind)])

    def __setitem__(self, kind: str, value: bool) -> None:
        self.arr[self.base + DRAIN_KINDS.index(kind)] = int(value)

    def values(self) -> list[bool]:
        return [self[k] for k in DRAIN_KINDS]


class InboundWorker(Envoy):
    """One of Envoy's workers: its own 15006 socket (SO_REUSEPORT), its own upstream pool."""

    def __init__(self, args: argparse.Namespace, shared: Shared, index: int, ready: int) -> None:
        super().__init__(args)
        self.shared, self.index, self.ready = shared, index, ready
        self.draining = SharedDraining(shared)  # type: ignore[assignment]

    def g(self, name: str, delta: int) -> None:
        self.shared.add(self.index, name, delta)

    async def main(self) -> None:
        await asyncio.start_server(self.handler("inbound"), "0.0.0.0", 15006, backlog=4096,
                                   reuse_address=True, reuse_port=True)
        if self.args.pool_prewarm:
            await self.prewarm()
        os.write(self.ready, b"r")
        os.close(self.ready)
        await asyncio.Event().wait()


def start_workers(args: argparse.Namespace, shared: Shared) -> list[int]:
    """Fork the inbound workers (before any event loop exists); they die with this process."""
    read_end, write_end = os.pipe()
    pids = []
    for index in range(shared.workers):
        # the prewarmed pool is Envoy's per worker: split the total between them
        share = args.pool_prewarm // shared.workers + (index < args.pool_prewarm % shared.workers)
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            worker_args = argparse.Namespace(**{**vars(args), "pool_prewarm": share})
            try:
                asyncio.run(InboundWorker(worker_args, shared, index, write_end).main())
            finally:
                os._exit(1)
        pids.append(pid)
    os.close(write_end)
    got = b""
    while len(got) < shared.workers:
        chunk = os.read(read_end, shared.workers)
        if not chunk:
            raise SystemExit("envoy stand-in: a worker died before it was ready")
        got += chunk
    os.close(read_end)
    return pids


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
    def __init__(self, args: argparse.Namespace, bootstrap: dict[str, Any], workers: int,
                 shared: Shared) -> None:
        super().__init__(args)
        self.allowed = stat_filter(bootstrap)
        self.workers = max(1, workers)
        self.shared = shared
        self.draining = SharedDraining(shared)  # type: ignore[assignment]
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

    def _with_workers(self) -> tuple[dict[str, int], set[str]]:
        """The main process's gauges plus the inbound workers' sums and per-worker copies."""
        gauges, used = dict(self.gauges), set(self.used)
        for worker, name, value, written in self.shared.rows():
            names = [name]
            if name.startswith(INBOUND_LISTENER):
                names.append(f"{INBOUND_LISTENER}.worker_{worker}.downstream_cx_active")
            for n in names:
                if written and self.allowed(n):
                    gauges[n] = gauges.get(n, 0) + value
                    used.add(n)
        return gauges, used

    def render_stats(self, flt: str) -> str:
        if any(self.draining.values()):
            self.gauges["server.state"] = 1 if "server.state" in self.used else 0
        self.g("http.admin.downstream_rq_active", 1)  # this request, while it is answered
        try:
            gauges, used = self._with_workers()
            pattern = re.compile(flt) if flt else None
            lines = [f"{k}: {gauges[k]}" for k in sorted(used)
                     if pattern is None or pattern.search(k)]
        finally:
            self.g("http.admin.downstream_rq_active", -1)
        return "\n".join(lines) + ("\n" if lines else "")

    async def main(self) -> None:
        """Outbound 15001 and the admin here; inbound 15006 is the workers'."""
        await asyncio.start_server(self.handler("outbound"), "127.0.0.1", 15001, backlog=4096,
                                   reuse_address=True)
        await asyncio.start_server(self.admin, "127.0.0.1", 15000, reuse_address=True)
        emit("envoy", "ready", pid=os.getpid(), workers=self.shared.workers)
        await asyncio.Event().wait()


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
        app_host=os.environ.get("MESHCFG_ENVOY_APP_HOST", "127.0.0.1"),
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
    shared = Shared(max(1, ns.concurrency))
    start_workers(ns.envoy, shared)
    asyncio.run(BootstrapEnvoy(ns.envoy, bootstrap, ns.concurrency, shared).main())


if __name__ == "__main__":
    main()
