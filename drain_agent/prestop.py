"""``meshcfg-drain prestop``: wait for the pod's in-flight connections, in time.

Loop: census (+ admin stats) every poll interval; DRAINED as soon as nothing is in
flight after the minimum drain; TIMED_OUT when the deadline (pod deadline minus
terminationDrainDuration minus the extra reserve) comes first, or when pilot-agent
closes its status port (it got SIGTERM: kubelet no longer waits for this hook);
PROXY_GONE when a proxy process exits mid-drain; INTERRUPTED on SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import psutil

from drain_agent import census as census_mod
from drain_agent.deadline import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_MIN_DRAIN_SECONDS,
    EXTRA_RESERVE_SECONDS,
    Deadline,
    parse_timestamp,
)
from drain_agent.envoy_admin import (
    DEFAULT_STATUS_PORT,
    REQUIRED_SUFFIXES,
    EnvoyAdmin,
    in_flight,
    missing_stats,
    pilot_agent_drain,
)
from drain_agent.events import DEFAULT_FIELD_PATH, EventReporter
from drain_agent.jsonlog import JsonLog
from drain_agent.kubeapi import ApiError, KubeApi
from drain_agent.status import ExitStatus

IDLE_CONFIRMATIONS = 2  # consecutive polls with no request in flight per admin stats
# every Nth poll counts everything (the logs, the peak, the report); the others stop at the
# first connection that counts (a quick census), which is all a busy pod's poll needs
FULL_CENSUS_EVERY = 5
POD_REREAD_SECONDS = 2.0
FINAL_EVENT_WAIT = 2.0  # seconds the exit waits for the last Event to reach the API


@dataclass
class PrestopConfig:
    poll_interval: float = 0.2
    min_drain: float = DEFAULT_MIN_DRAIN_SECONDS
    grace_period: float = DEFAULT_GRACE_SECONDS
    termination_drain_duration: float = 5.0
    extra_reserve: float = EXTRA_RESERVE_SECONDS
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
    field_path: str = DEFAULT_FIELD_PATH
    status_port: int = DEFAULT_STATUS_PORT
    native_sidecar: bool = False
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
                self._read()
                self.error = None
            except (ApiError, ValueError) as e:
                if self.error is None:
                    self.log("pod_read_failed", level="warning", error=str(e))
                    self.deadline.keep_fallback(
                        f"--grace-period {self.cfg.grace_period:g}s (the pod could not be "
                        f"read: {e})")
                self.error = str(e)
            self.first.set()
            # a later, shorter deletion moves the deadline earlier: look again
            self.stop.wait(POD_REREAD_SECONDS)

    def _read(self) -> None:
        meta = self.api.get_pod(self.cfg.pod_namespace, self.cfg.pod_name).get("metadata") or {}
        self.uid = meta.get("uid")
        ts = meta.get("deletionTimestamp")
        if not ts:
            self.deadline.keep_fallback(
                f"--grace-period {self.cfg.grace_period:g}s (the pod has no deletionTimestamp: "
                "kubelet stops it on its own, e.g. eviction or node shutdown)")
            return
        grace = meta.get("deletionGracePeriodSeconds")
        if self.deadline.set_from_api(parse_timestamp(str(ts)),
                                      None if grace is None else float(grace)):
            self.log("deadline", deadlineSource=self.deadline.source,
                     secondsLeft=round(self.deadline.remaining(), 3))


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


class Outcome(NamedTuple):
    reason: str
    status: ExitStatus


def _empty_result(backend: str) -> census_mod.CensusResult:
    return census_mod.CensusResult(
        raw=[], inbound=0, outbound=0, excluded_proxy=0, excluded_port=0,
        not_counted_states={}, app_ports=[], proxy_pids=[], seconds=0.0, backend=backend,
    )


class Drain:
    """One run of the hook: clocks, the collaborators it talks to, what it saw."""

    def __init__(self, cfg: PrestopConfig, log: JsonLog, stop: threading.Event) -> None:
        self.cfg, self.log, self.stop = cfg, log, stop
        now_wall = time.time()
        self.state = DrainState.load_or_create(cfg, now_wall, process_start_wall())
        self.start = time.monotonic() - (now_wall - self.state.start_wall)
        self.startup = now_wall - self.state.start_wall
        self.reserve = cfg.termination_drain_duration + cfg.extra_reserve
        self.deadline = Deadline(self.start, cfg.grace_period, self.reserve)
        self.min_end = self.start + cfg.min_drain
        self.admin = EnvoyAdmin(cfg.admin_url, cfg.admin_timeout)
        self.census = census_mod.Census(
            proxy_names=cfg.proxy_names, excluded_ports=cfg.excluded_ports,
            app_ports=cfg.app_ports, count_close_wait=cfg.count_close_wait,
            net_dir=cfg.net_dir, backend=cfg.backend,
        )
        self.watcher: PodWatcher | None = None
        self.reporter = self._reporter()
        # what the polls saw
        self.peak = self.polls = self.census_errors = self.idle_streak = 0
        self.last_total = -1
        self.admin_stats = "unreachable-or-unused"  # | reachable | filtered
        self.res = _empty_result(self.census.backend)
        self.active: int | None = None
        self.proxy_pids: list[int] = []  # the proxy's processes at the first poll
        self.status_port_seen = False

    def _reporter(self) -> EventReporter:
        cfg = self.cfg
        api: KubeApi | None = None
        if cfg.api_server and cfg.pod_name and cfg.pod_namespace:
            api = KubeApi(cfg.api_server, cfg.token_file, cfg.ca_file, cfg.api_timeout)
        reporter = EventReporter(api if cfg.events else None, cfg.pod_namespace, cfg.pod_name,
                                 self.state.drain_id, self.log, cfg.field_path)
        if api is not None:
            watcher = self.watcher = PodWatcher(api, cfg, self.deadline, self.log)
            watcher.start()

            def pod_uid() -> str | None:
                # the uid makes the events show under the pod; the events thread waits for
                # it a little, the drain never does
                watcher.first.wait(cfg.api_timeout)
                return watcher.uid

            reporter.before_first = pod_uid
        return reporter

    def run(self) -> ExitStatus:
        self._announce()
        outcome = self._loop()
        self._report(outcome)
        self._close()
        return outcome.status

    def _announce(self) -> None:
        cfg, deadline = self.cfg, self.deadline
        self.log(
            "drain_started",
            drainId=self.state.drain_id,
            resumed=abs(self.state.start_wall - process_start_wall()) > 0.5,
            startupSeconds=round(self.startup, 3),
            # with the API, the pod read that decides it runs in parallel ("deadline" line)
            deadlineSource="pending" if self.watcher is not None else deadline.source,
            secondsLeft=round(deadline.remaining(), 3),
            reserveSeconds=self.reserve,
            minDrainSeconds=cfg.min_drain,
            pollSeconds=cfg.poll_interval,
            backend=self.census.backend,
            nativeSidecar=cfg.native_sidecar,
        )
        drained = _drain_word(self._start_drain())

        def message() -> str:  # posted after the first pod read, so the source is known
            return (f"meshcfg-drain: waiting for in-flight connections; must finish in "
                    f"{max(0.0, deadline.remaining()):.1f}s (deadline from {deadline.why}; "
                    f"reserve {self.reserve:g}s for terminationDrainDuration+"
                    f"{cfg.extra_reserve:g}s); minimum drain {cfg.min_drain:g}s; "
                    f"drain_listeners: {drained}")

        self.reporter.emit("DrainStarted", message)

    def _start_drain(self) -> bool | None:
        """Envoy's inbound listeners start draining; for a native sidecar through
        pilot-agent, so that it exits at once on the SIGTERM that follows the app's exit."""
        if not self.cfg.drain_listeners:
            return None
        if self.cfg.native_sidecar:
            return pilot_agent_drain(self.cfg.status_port, self.cfg.admin_timeout)
        return self.admin.drain_listeners()

    def _loop(self) -> Outcome:
        while True:
            outcome = self._poll()
            if outcome is not None:
                return outcome
            self._wait()

    def _poll(self) -> Outcome | None:
        """One census; the outcome when the drain is over."""
        try:
            res = self.census.run(quick=self.polls % FULL_CENSUS_EVERY != 0)
        except Exception as e:  # noqa: BLE001 - a bug must not end the drain early
            return self._census_failed(e)
        self.res = res
        self.polls += 1
        if self.polls == 1:
            self.proxy_pids = list(self.census.owners.others)
            self.status_port_seen = self.cfg.status_port in res.listening
        self.peak = max(self.peak, res.total)
        self.active = self._requests_in_flight(res)
        self._log_change(res)
        self.idle_streak = self.idle_streak + 1 if self.active == 0 else 0
        return self._proxy_stopped(res) or self._judge(res, time.monotonic())

    def _census_failed(self, e: Exception) -> Outcome | None:
        self.census_errors += 1
        if self.census_errors == 1:
            self.log("census_failed", level="error", error=f"{type(e).__name__}: {e}")
        self.res = _empty_result(self.census.backend)
        # unknown is not empty: keep waiting (bounded by the deadline)
        if self.deadline.remaining() <= 0:
            return Outcome("deadline reached (census failing)", ExitStatus.TIMED_OUT)
        if self.stop.is_set():
            return Outcome("interrupted by SIGTERM", ExitStatus.INTERRUPTED)
        return None

    def _requests_in_flight(self, res: census_mod.CensusResult) -> int | None:
        if not self.cfg.use_stats or res.total == 0:
            return None
        stats = self.admin.stats()
        if stats is None:
            self.admin_stats = "unreachable-or-unused"
            return None
        active = in_flight(stats)
        if active is None and self.admin_stats != "filtered":
            self.log("admin_stats_filtered", level="warning", missing=missing_stats(stats),
                     hint="add inclusion suffixes " + ",".join(REQUIRED_SUFFIXES) +
                     " to proxyStatsMatcher; until then every connection counts as in flight")
        self.admin_stats = "reachable" if active is not None else "filtered"
        return active

    def _proxy_stopped(self, res: census_mod.CensusResult) -> Outcome | None:
        """The proxy went away under the drain: nothing left to wait for."""
        gone = [pid for pid in self.proxy_pids if not _alive(pid)]
        if gone:
            return Outcome(f"the proxy exited during the drain (pid {', '.join(map(str, gone))}"
                           f"; {res.total}{'' if res.complete else ' or more'} connections "
                           "were open)", ExitStatus.PROXY_GONE)
        if self.status_port_seen and self.cfg.status_port not in res.listening:
            why = (f"pilot-agent closed its status port {self.cfg.status_port} (it got "
                   "SIGTERM: kubelet no longer waits for this hook)")
            if res.total == 0:
                return Outcome(f"no connections in flight; {why}", ExitStatus.DRAINED)
            return Outcome(why, ExitStatus.TIMED_OUT)
        return None

    def _log_change(self, res: census_mod.CensusResult) -> None:
        if res.total == self.last_total or not res.complete:
            return
        self.log("census", total=res.total, inbound=res.inbound, outbound=res.outbound,
                 requestsInFlight=self.active, censusMs=round(res.seconds * 1000, 2))
        self.last_total = res.total

    def _drained(self, res: census_mod.CensusResult) -> str | None:
        if res.total == 0:
            return "no connections in flight"
        if self.idle_streak >= IDLE_CONFIRMATIONS:
            return (f"only idle keep-alive connections left ({self._complete().total}; "
                    "admin stats: 0 requests in flight)")
        return None

    def _complete(self) -> census_mod.CensusResult:
        """The last census, counted in full (a quick one is redone) for what is reported."""
        if not self.res.complete:
            try:
                self.res = self.census.run()
            except Exception as e:  # noqa: BLE001 - reporting must not fail the drain
                self.log("census_failed", level="error", error=f"{type(e).__name__}: {e}")
            self.peak = max(self.peak, self.res.total)
        return self.res

    def _judge(self, res: census_mod.CensusResult, now: float) -> Outcome | None:
        drained = self._drained(res)
        if drained and now >= self.min_end:
            return Outcome(drained, ExitStatus.DRAINED)
        if self.deadline.remaining(now) <= 0:
            if drained:  # drained, but the deadline came before the minimum drain ended
                return Outcome(f"{drained} (minimum drain cut short by the deadline)",
                               ExitStatus.DRAINED)
            return Outcome("deadline reached", ExitStatus.TIMED_OUT)
        if self.stop.is_set():
            return Outcome("interrupted by SIGTERM", ExitStatus.INTERRUPTED)
        return None

    def _wait(self) -> None:
        """Until the next poll, the end of the minimum drain, the deadline or SIGTERM."""
        now = time.monotonic()
        wait = min(self.cfg.poll_interval, max(0.0, self.deadline.remaining(now)))
        if now < self.min_end:
            wait = min(wait, self.min_end - now) or self.cfg.poll_interval
        self.stop.wait(wait)  # a SIGTERM ends the wait; the next poll reports it

    def _report(self, outcome: Outcome) -> None:
        elapsed = time.monotonic() - self.start
        self._complete()
        fields = self._final_fields(outcome, elapsed)
        if outcome.status == ExitStatus.DRAINED:
            self.log("drain_completed", **fields)
            self.reporter.emit(
                "DrainCompleted",
                f"meshcfg-drain: drained in {elapsed:.1f}s, peak {self.peak} connections; "
                f"{outcome.reason}",
            )
            return
        res = self.res
        fields["stillOpen"] = res.summary(limit=20)
        self.log("drain_timed_out", level="warning", **fields)
        extra = f"; {self.active} requests in flight per admin stats" if self.active else ""
        if self.admin_stats == "filtered":
            extra += "; admin stats filtered by the proxy's stats matcher (idle connections "
            extra += "counted as in flight)"
        reason = "ProxyGone" if outcome.status == ExitStatus.PROXY_GONE else "DrainTimedOut"
        self.reporter.emit(
            reason,
            f"meshcfg-drain: {outcome.reason} after {elapsed:.1f}s (deadline from "
            f"{self.deadline.why}, leaving {self.reserve:g}s to pilot-agent); still open: "
            f"{res.total} ({describe_open(res)}){extra}",
            warning=True,
        )

    def _final_fields(self, outcome: Outcome, elapsed: float) -> dict[str, Any]:
        return {
            "outcome": outcome.reason,
            "exitCode": int(outcome.status),
            "seconds": round(elapsed, 3),
            "peak": self.peak,
            "polls": self.polls,
            "open": self.res.total,
            "requestsInFlight": self.active,
            "adminStats": self.admin_stats,
            "deadlineSource": self.deadline.source,
            "deadline": self.deadline.why,
            "proxyFdScans": self.census.owners.scans,
            "censusErrors": self.census_errors,
        }

    def _close(self) -> None:
        # best effort: a slow or absent API delays the exit by at most FINAL_EVENT_WAIT,
        # less near the deadline (a busy API server's Event POST, on a new TLS connection,
        # took over half a second on the test node and the final Event was lost)
        left = self.deadline.remaining() + self.reserve - 1.0
        self.reporter.close(flush_timeout=min(FINAL_EVENT_WAIT, max(0.2, left)))
        if self.watcher is not None:
            self.watcher.stop.set()
        self.admin.close()
        self.census.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run_prestop(cfg: PrestopConfig, log: JsonLog, stop: threading.Event) -> ExitStatus:
    return Drain(cfg, log, stop).run()
