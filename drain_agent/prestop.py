"""``meshcfg-drain prestop``: wait for the pod's in-flight connections, in time.

Loop: census (+ admin stats) every poll interval; return 0 as soon as nothing is in
flight after the minimum drain; return 1 when the deadline (pod deadline minus
terminationDrainDuration minus the extra reserve) comes first; 3 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from drain_agent import census as census_mod
from drain_agent.deadline import Deadline, parse_timestamp
from drain_agent.envoy_admin import EnvoyAdmin, in_flight
from drain_agent.events import EventReporter
from drain_agent.jsonlog import JsonLog
from drain_agent.kubeapi import ApiError, KubeApi

EXIT_DRAINED = 0
EXIT_TIMED_OUT = 1
EXIT_INTERRUPTED = 3
IDLE_CONFIRMATIONS = 2  # consecutive polls with no request in flight per admin stats


@dataclass
class PrestopConfig:
    poll_interval: float = 0.2
    min_drain: float = 0.0
    grace_period: float = 30.0
    termination_drain_duration: float = 5.0
    extra_reserve: float = 2.0
    drain_listeners: bool = True
    use_stats: bool = True
    admin_url: str = "http://127.0.0.1:15000"
    admin_timeout: float = 0.25
    proxy_names: tuple[str, ...] = census_mod.DEFAULT_PROXY_NAMES
    excluded_ports: frozenset[int] = field(
        default_factory=lambda: census_mod.parse_ports(census_mod.DEFAULT_EXCLUDED_PORTS)
    )
    app_ports: frozenset[int] = frozenset()
    count_close_wait: bool = False
    net_dir: str = "/proc/net"
    backend: str = "auto"
    api_server: str | None = None
    token_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ca_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    api_timeout: float = 0.5
    pod_name: str = ""
    pod_namespace: str = ""
    events: bool = True
    state_dir: str | None = None


@dataclass
class DrainState:
    """Survives a second run of the hook (kubelet may run it again)."""

    start_wall: float
    drain_id: str

    @staticmethod
    def load_or_create(cfg: PrestopConfig, now_wall: float, started_wall: float) -> DrainState:
        path = _state_path(cfg)
        if path:
            try:
                with open(path, encoding="utf-8") as fh:
                    d = json.load(fh)
                start = float(d["start_wall"])
                if 0 <= now_wall - start <= cfg.grace_period + 60:
                    return DrainState(start, str(d["drain_id"]))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        st = DrainState(started_wall, f"drain-{int(started_wall * 1000):x}")
        if path:
            try:
                tmp = f"{path}.{os.getpid()}"
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump({"start_wall": st.start_wall, "drain_id": st.drain_id}, fh)
                os.replace(tmp, path)
            except OSError:
                pass
        return st


def _state_path(cfg: PrestopConfig) -> str | None:
    d = cfg.state_dir
    if not d:
        return None
    name = cfg.pod_name or "pod"
    return os.path.join(d, f"meshcfg-drain-{name}.json")


class PodWatcher:
    """Reads the pod (uid, deletionTimestamp) in the background, now and then again."""

    def __init__(self, api: KubeApi, cfg: PrestopConfig, deadline: Deadline, log: JsonLog) -> None:
        self.api = api
        self.cfg = cfg
        self.deadline = deadline
        self.log = log
        self.first = threading.Event()
        self.uid: str | None = None
        self.error: str | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                pod = self.api.get_pod(self.cfg.pod_namespace, self.cfg.pod_name)
                meta = pod.get("metadata") or {}
                self.uid = meta.get("uid")
                ts = meta.get("deletionTimestamp")
                if ts:
                    self.deadline.set_from_api(parse_timestamp(str(ts)))
                self.error = None
            except (ApiError, ValueError) as e:
                if self.error is None:
                    self.log("pod_read_failed", level="warning", error=str(e))
                self.error = str(e)
            self.first.set()
            # a later, shorter deletion moves the deadline earlier: look again
            self.stop.wait(2.0)


def _drain_word(result: bool | None) -> str:
    if result is None:
        return "skipped"
    return "ok" if result else "unreachable"


def describe_open(res: census_mod.CensusResult) -> str:
    parts = [f"{g['count']}x {g['direction']} {g['endpoint']}" for g in res.summary(limit=20)]
    return ", ".join(parts) if parts else "none"


def process_age(pid: int) -> float:
    """Seconds since ``pid`` was started, to the clock tick (psutil's create_time
    rests on the whole-second boot time, up to a second off)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    start_ticks = int(fields[19])  # field 22 of stat, counted after "pid (comm)"
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


def process_start_wall() -> float:
    """When kubelet exec'd this hook (interpreter or one-file unpacking not included)."""
    try:
        pid = os.getpid()
        if getattr(sys, "frozen", False):  # PyInstaller one-file: the bootloader came first
            me = psutil.Process()
            parent = me.parent()
            if parent is not None and parent.exe() == me.exe():
                pid = parent.pid
        return time.time() - max(0.0, process_age(pid))
    except (psutil.Error, OSError, ValueError, IndexError):
        return time.time()


def run_prestop(cfg: PrestopConfig, log: JsonLog, stop: threading.Event) -> int:
    now_wall = time.time()
    now = time.monotonic()
    state = DrainState.load_or_create(cfg, now_wall, process_start_wall())
    start = now - (now_wall - state.start_wall)
    reserve = cfg.termination_drain_duration + cfg.extra_reserve
    deadline = Deadline(start, cfg.grace_period, reserve)

    api: KubeApi | None = None
    if cfg.api_server and cfg.pod_name and cfg.pod_namespace:
        api = KubeApi(cfg.api_server, cfg.token_file, cfg.ca_file, cfg.api_timeout)
    reporter = EventReporter(
        api if cfg.events else None, cfg.pod_namespace, cfg.pod_name, state.drain_id, log
    )
    watcher: PodWatcher | None = None
    if api is not None:
        watcher = PodWatcher(api, cfg, deadline, log)
        watcher.start()
        w = watcher

        def pod_uid() -> str | None:
            # the uid makes the events show under the pod; the events thread waits for
            # it a little, the drain never does
            w.first.wait(cfg.api_timeout)
            return w.uid

        reporter.before_first = pod_uid

    admin = EnvoyAdmin(cfg.admin_url, cfg.admin_timeout)
    census = census_mod.Census(
        proxy_names=cfg.proxy_names,
        excluded_ports=cfg.excluded_ports,
        app_ports=cfg.app_ports,
        count_close_wait=cfg.count_close_wait,
        net_dir=cfg.net_dir,
        backend=cfg.backend,
    )
    log(
        "drain_started",
        drainId=state.drain_id,
        resumed=abs(state.start_wall - process_start_wall()) > 0.5,
        startupSeconds=round(now_wall - state.start_wall, 3),
        deadlineSource=deadline.source,
        secondsLeft=round(deadline.remaining(), 3),
        reserveSeconds=reserve,
        minDrainSeconds=cfg.min_drain,
        pollSeconds=cfg.poll_interval,
        backend=census.backend,
    )
    drained_listeners = admin.drain_listeners() if cfg.drain_listeners else None
    reporter.emit(
        "DrainStarted",
        f"meshcfg-drain: waiting for in-flight connections; must finish in "
        f"{max(0.0, deadline.remaining()):.1f}s (deadline from {deadline.source}, reserve "
        f"{reserve:g}s for terminationDrainDuration+{cfg.extra_reserve:g}s); "
        f"drain_listeners: {_drain_word(drained_listeners)}",
    )

    min_end = start + cfg.min_drain
    peak = 0
    polls = 0
    idle_streak = 0
    last_total = -1
    stats_seen = False
    outcome: str
    code: int
    res: census_mod.CensusResult | None = None
    active: int | None = None
    census_errors = 0
    while True:
        try:
            res = census.run()
        except Exception as e:  # noqa: BLE001 - a bug must not end the drain early
            census_errors += 1
            if census_errors == 1:
                log("census_failed", level="error", error=f"{type(e).__name__}: {e}")
            res = census_mod.CensusResult(
                raw=[], inbound=0, outbound=0, excluded_proxy=0, excluded_port=0,
                not_counted_states={}, app_ports=[], proxy_pids=[], seconds=0.0,
                backend=census.backend,
            )
            # unknown is not empty: keep waiting (bounded by the deadline)
            left = deadline.remaining()
            if left <= 0 or stop.wait(min(cfg.poll_interval, left)):
                outcome = "deadline reached (census failing)" if left <= 0 else "interrupted"
                code = EXIT_TIMED_OUT if left <= 0 else EXIT_INTERRUPTED
                break
            continue
        polls += 1
        peak = max(peak, res.total)
        active = None
        if cfg.use_stats and res.total > 0:
            stats = admin.stats()
            if stats is not None:
                stats_seen = True
                active = in_flight(stats)
        now = time.monotonic()
        if res.total != last_total:
            log(
                "census",
                total=res.total,
                inbound=res.inbound,
                outbound=res.outbound,
                requestsInFlight=active,
                censusMs=round(res.seconds * 1000, 2),
            )
            last_total = res.total
        idle_streak = idle_streak + 1 if active == 0 else 0
        drained: str | None = None
        if res.total == 0:
            drained = "no connections in flight"
        elif idle_streak >= IDLE_CONFIRMATIONS:
            drained = (
                f"only idle keep-alive connections left ({res.total}; "
                "admin stats: 0 requests in flight)"
            )
        if drained and now >= min_end:
            outcome, code = drained, EXIT_DRAINED
            break
        left = deadline.remaining(now)
        if left <= 0:
            if drained:  # drained, but the deadline came before the minimum drain ended
                outcome, code = f"{drained} (minimum drain cut short by the deadline)", 0
            else:
                outcome, code = "deadline reached", EXIT_TIMED_OUT
            break
        if stop.is_set():
            outcome, code = "interrupted by SIGTERM", EXIT_INTERRUPTED
            break
        wait = min(cfg.poll_interval, left)
        if now < min_end:
            wait = min(wait, max(0.0, min_end - now)) or cfg.poll_interval
        if stop.wait(wait):
            continue  # re-check once, then leave as interrupted

    elapsed = time.monotonic() - start
    fields: dict[str, Any] = {
        "outcome": outcome,
        "exitCode": code,
        "seconds": round(elapsed, 3),
        "peak": peak,
        "polls": polls,
        "open": res.total if res else 0,
        "requestsInFlight": active,
        "adminStats": "reachable" if stats_seen else "unreachable-or-unused",
        "deadlineSource": deadline.source,
        "proxyFdScans": census.owners.scans,
        "censusErrors": census_errors,
    }
    if code == EXIT_DRAINED:
        log("drain_completed", **fields)
        reporter.emit(
            "DrainCompleted",
            f"meshcfg-drain: drained in {elapsed:.1f}s, peak {peak} connections; {outcome}",
        )
    else:
        assert res is not None
        fields["stillOpen"] = res.summary(limit=20)
        log("drain_timed_out", level="warning", **fields)
        extra = f"; {active} requests in flight per admin stats" if active else ""
        reporter.emit(
            "DrainTimedOut",
            f"meshcfg-drain: {outcome} after {elapsed:.1f}s (deadline from {deadline.source}, "
            f"leaving {reserve:g}s to pilot-agent); still open: {res.total} "
            f"({describe_open(res)}){extra}",
            warning=True,
        )
    # best effort: a slow or absent API delays the exit by at most half a second
    reporter.close(flush_timeout=min(0.5, max(0.2, deadline.remaining() + reserve - 1.0)))
    if watcher is not None:
        watcher.stop.set()
    admin.close()
    census.close()
    return code
