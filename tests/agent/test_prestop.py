"""``meshcfg-drain prestop`` as a real process in a private netns, with a fake admin."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import APP_UID, ROOT, Pod

FAKE_ADMIN = str(Path(__file__).with_name("fake_admin.py"))
IDLE_STATS = (
    "http.inbound_0.0.0.0_8080.downstream_rq_active: 0\n"
    "http.inbound_0.0.0.0_8080.downstream_cx_active: 2\n"
    "listener.0.0.0.0_15006.downstream_cx_active: 2\n"
    "listener.admin.downstream_cx_active: 1\n"
    "http.admin.downstream_rq_active: 1\n"
)
BUSY_STATS = IDLE_STATS.replace("downstream_rq_active: 0", "downstream_rq_active: 1")


class Agent:
    def __init__(self, pod: Pod, tmp: Path) -> None:
        self.pod = pod
        self.tmp = tmp
        self.stats = tmp / "stats"
        self.drains = tmp / "drains"
        self.stats.write_text(IDLE_STATS)
        self.drains.write_text("")

    def admin(self) -> None:
        p = self.pod.ns.popen([sys.executable, FAKE_ADMIN, str(self.stats), str(self.drains)],
                              stdout=subprocess.PIPE, text=True)
        self.pod.procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def start(self, *flags: str,
              env: dict[str, str | None] | None = None) -> subprocess.Popen[str]:
        e = dict(os.environ)
        # no minimum drain unless a test asks: these tests time the loop itself
        # (test_the_default_minimum_drain_holds_an_idle_pod checks the default)
        e.update({"MESHCFG_DRAIN_API_SERVER": "", "MESHCFG_DRAIN_CONTAINER_LOG": "",
                  "MESHCFG_DRAIN_STATE_DIR": str(self.tmp), "PYTHONPATH": str(ROOT),
                  "MESHCFG_DRAIN_MIN_DRAIN": "0s"})
        e.update(env or {})
        e = {k: v for k, v in e.items() if v is not None}
        return self.pod.ns.popen([sys.executable, "-m", "drain_agent", "prestop", *flags],
                                 stdout=subprocess.PIPE, text=True, env=e)

    def run(self, *flags: str, env: dict[str, str | None] | None = None,
            timeout: float = 30) -> tuple[int, list[dict[str, Any]], float]:
        t0 = time.monotonic()
        p = self.start(*flags, env=env)
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, [json.loads(x) for x in out.splitlines()], time.monotonic() - t0


@pytest.fixture
def agent(pod: Pod, tmp_path: Path) -> Agent:
    return Agent(pod, tmp_path)


def app_with_connection(pod: Pod) -> subprocess.Popen[str]:
    pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    return pod.hold({"comm": "client", "connect": [{"host": "127.0.0.1", "port": 8080}]},
                    uid=2000)


def final(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in reversed(lines) if r["msg"] in ("drain_completed", "drain_timed_out"))


def test_nothing_in_flight_returns_at_once(pod: Pod, agent: Agent) -> None:
    agent.admin()
    pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    code, lines, took = agent.run("--grace-period", "30s")
    assert code == 0
    assert lines[0]["msg"] == "drain_started" and lines[0]["logger"] == "meshcfg-drain"
    assert final(lines)["outcome"] == "no connections in flight"
    assert took < 5
    assert agent.drains.read_text().splitlines() == ["/drain_listeners?inboundonly&graceful"]


def test_idle_connections_do_not_hold(pod: Pod, agent: Agent) -> None:
    agent.admin()
    app_with_connection(pod)
    code, lines, _ = agent.run("--min-drain", "500ms", "--poll-interval", "100ms",
                               "--grace-period", "30")
    f = final(lines)
    assert code == 0 and f["outcome"].startswith("only idle keep-alive"), f
    assert f["open"] == 2 and f["requestsInFlight"] == 0
    # minimum drain plus two polls, counted from the process start (when the interpreter
    # start-up took longer than the minimum drain, from its first poll)
    first_poll = max(0.5, lines[0]["startupSeconds"])
    assert f["seconds"] <= first_poll + 2 * 0.1 + 0.3, f


def test_requests_in_flight_hold_until_the_connection_closes(pod: Pod, agent: Agent) -> None:
    agent.admin()
    agent.stats.write_text(BUSY_STATS)
    client = app_with_connection(pod)
    p = agent.start("--poll-interval", "100ms", "--grace-period", "30")
    assert p.stdout is not None
    first = [json.loads(p.stdout.readline()) for _ in range(2)]
    assert first[1]["msg"] == "census" and first[1]["total"] == 2, first
    assert first[1]["requestsInFlight"] == 1
    pod.release(client)  # the client closes: its side TIME_WAIT, the app's side CLOSE_WAIT
    out, _ = p.communicate(timeout=20)
    lines = first + [json.loads(x) for x in out.splitlines()]
    assert p.returncode == 0
    assert final(lines)["outcome"] == "no connections in flight"


def test_admin_unreachable_census_only_until_deadline(pod: Pod, agent: Agent) -> None:
    app_with_connection(pod)  # no admin endpoint at all
    code, lines, took = agent.run("--grace-period", "4s", "--termination-drain-duration", "1s",
                                  "--poll-interval", "100ms")
    f = final(lines)
    assert code == 1 and f["msg"] == "drain_timed_out", f
    assert f["adminStats"] == "unreachable-or-unused"
    # 4 s - (1 s + 2 s), from the process start
    assert 0.9 <= f["seconds"] <= max(1.0, lines[0]["startupSeconds"]) + 0.6, f
    assert {"direction": "inbound", "endpoint": ":8080", "count": 1} in f["stillOpen"]
    assert {"direction": "outbound", "endpoint": "127.0.0.1:8080", "count": 1} in f["stillOpen"]


def test_termination_drain_duration_from_proxy_config(pod: Pod, agent: Agent) -> None:
    app_with_connection(pod)
    env: dict[str, str | None] = {
           "PROXY_CONFIG": json.dumps({"terminationDrainDuration": "2s"}),
           "MESHCFG_DRAIN_GRACE_PERIOD": "5", "MESHCFG_DRAIN_POLL_INTERVAL": "50ms"}
    code, lines, _ = agent.run(env=env)
    assert code == 1
    assert lines[0]["reserveSeconds"] == 4.0 and lines[0]["pollSeconds"] == 0.05
    assert 0.9 <= final(lines)["seconds"] <= max(1.0, lines[0]["startupSeconds"]) + 0.6


def test_grace_shorter_than_reserve_returns_at_once(pod: Pod, agent: Agent) -> None:
    app_with_connection(pod)
    code, lines, took = agent.run("--grace-period", "3", "--termination-drain-duration", "5s")
    assert code == 1 and final(lines)["polls"] == 1
    assert took < 5


def test_sigterm_stops_promptly(pod: Pod, agent: Agent) -> None:
    app_with_connection(pod)
    p = agent.start("--grace-period", "60", "--poll-interval", "5s")
    assert p.stdout is not None
    assert json.loads(p.stdout.readline())["msg"] == "drain_started"
    json.loads(p.stdout.readline())  # first census
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 3
    assert time.monotonic() - t0 < 1.0  # a 5 s poll interval is an Event wait, not a sleep
    assert final([json.loads(x) for x in out.splitlines()])["outcome"] == "interrupted by SIGTERM"


def test_second_run_resumes_the_first(pod: Pod, agent: Agent) -> None:
    app_with_connection(pod)
    flags = ("--grace-period", "4", "--termination-drain-duration", "1s",
             "--pod-name", "web-0", "--poll-interval", "100ms")
    code1, lines1, _ = agent.run(*flags)
    code2, lines2, took2 = agent.run(*flags)
    assert code1 == code2 == 1
    assert lines2[0]["drainId"] == lines1[0]["drainId"]
    assert lines2[0]["resumed"] is True and lines1[0]["resumed"] is False
    assert final(lines2)["polls"] == 1  # the same deadline, already passed
    assert (agent.tmp / "meshcfg-drain-web-0.json").exists()


def test_container_log_gets_the_lines(pod: Pod, agent: Agent, tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    log.write_text("")
    code, lines, _ = agent.run("--container-log", str(log))
    assert code == 0
    assert [json.loads(x)["msg"] for x in log.read_text().splitlines()] == [
        r["msg"] for r in lines
    ]


def test_every_flag_has_an_env_twin() -> None:
    out = subprocess.run([sys.executable, "-m", "drain_agent", "prestop", "--help"],
                         capture_output=True, text=True, check=True, cwd=ROOT,
                         env=dict(os.environ, COLUMNS="300")).stdout
    flags = [w.split("=")[0] for w in out.split() if w.startswith("--") and w != "--help"]
    assert len(set(flags)) >= 20
    for flag in set(flags):
        env = "MESHCFG_DRAIN_" + flag[2:].replace("-", "_").upper()
        assert env in out, flag


def test_bad_flag_value_is_a_usage_error() -> None:
    r = subprocess.run([sys.executable, "-m", "drain_agent", "prestop", "--poll-interval", "x"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "--poll-interval" in r.stderr


def test_minimum_drain_never_outlives_the_deadline(pod: Pod, agent: Agent) -> None:
    pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    code, lines, _ = agent.run("--grace-period", "4", "--termination-drain-duration", "1s",
                               "--min-drain", "30s", "--poll-interval", "100ms")
    f = final(lines)
    assert code == 0, f  # nothing was in flight: drained, only the minimum was cut
    assert f["outcome"] == "no connections in flight (minimum drain cut short by the deadline)"
    assert 0.9 <= f["seconds"] <= max(1.0, lines[0]["startupSeconds"]) + 0.6, f


def test_a_failing_census_waits_until_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import threading

    from drain_agent import census as census_mod
    from drain_agent import prestop
    from drain_agent.jsonlog import JsonLog
    from drain_agent.prestop import PrestopConfig, run_prestop

    def broken(self: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(census_mod.Census, "run", broken)
    monkeypatch.setattr(prestop, "process_start_wall", time.time)  # in-process: start now
    out = io.StringIO()
    cfg = PrestopConfig(grace_period=3.5, termination_drain_duration=0.5, poll_interval=0.05,
                        admin_url="http://127.0.0.1:1", state_dir=None, events=False)
    t0 = time.monotonic()
    code = run_prestop(cfg, JsonLog(None, stream=out), threading.Event())
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert code == 1
    assert [r["msg"] for r in lines if r["msg"] == "census_failed"] == ["census_failed"]
    assert final(lines)["outcome"] == "deadline reached (census failing)"
    assert 0.9 <= time.monotonic() - t0 <= 2.0  # 3.5 - (0.5 + 2) s


def test_the_default_minimum_drain_holds_an_idle_pod(pod: Pod, agent: Agent) -> None:
    """Left out, --min-drain is pilot-agent's MINIMUM_DRAIN_DURATION (5 s): late requests
    from clients that have not yet seen the endpoint removal still find the proxy."""
    agent.admin()
    pod.hold({"comm": "app", "listen": [{"host": "0.0.0.0", "port": 8080}]}, uid=APP_UID)
    code, lines, _ = agent.run("--grace-period", "30s", env={"MESHCFG_DRAIN_MIN_DRAIN": None})
    f = final(lines)
    assert code == 0 and f["outcome"] == "no connections in flight", f
    assert lines[0]["minDrainSeconds"] == 5
    assert 5.0 <= f["seconds"] <= max(5.0, lines[0]["startupSeconds"]) + 0.6, f


ISTIO_DEFAULT_STATS = (  # what Istio's default stats matcher lets through: neither name
    "cluster_manager.active_clusters: 12\n"
    "listener_manager.total_listeners_active: 9\n"
    "server.state: 0\n"
)


def test_filtered_stats_are_unknown_not_zero(pod: Pod, agent: Agent) -> None:
    """Under Istio's default stats matcher the counters are absent, which must not read
    as "0 requests in flight": the connections hold the drain until the deadline."""
    agent.admin()
    agent.stats.write_text(ISTIO_DEFAULT_STATS)
    app_with_connection(pod)
    code, lines, _ = agent.run("--grace-period", "5s", "--termination-drain-duration", "1s",
                               "--poll-interval", "100ms")
    f = final(lines)
    assert code == 1 and f["outcome"] == "deadline reached", f
    assert f["adminStats"] == "filtered" and f["requestsInFlight"] is None
    warned = [r for r in lines if r["msg"] == "admin_stats_filtered"]
    assert len(warned) == 1
    assert warned[0]["missing"] == ["downstream_rq_active", "downstream_cx_active"]


def test_per_worker_counters_do_not_hold_an_idle_pod(pod: Pod, agent: Agent) -> None:
    """Envoy reports each listener's total and a copy per worker: adding them in would
    count 2 idle connections as 4 active ones, minus 2 on the HCM = 2 "in flight"."""
    agent.admin()
    agent.stats.write_text(IDLE_STATS + (
        "listener.0.0.0.0_15006.worker_0.downstream_cx_active: 1\n"
        "listener.0.0.0.0_15006.worker_1.downstream_cx_active: 1\n"
        "listener.admin.main_thread.downstream_cx_active: 1\n"
        "listener.envoy_internal_connect_originate.downstream_cx_active: 3\n"
    ))
    app_with_connection(pod)
    code, lines, _ = agent.run("--grace-period", "30", "--poll-interval", "100ms")
    f = final(lines)
    assert code == 0 and f["outcome"].startswith("only idle keep-alive"), f


def test_the_proxy_exiting_mid_drain_is_a_failure(pod: Pod, agent: Agent) -> None:
    agent.admin()
    envoy = pod.procs[-1]
    agent.stats.write_text(BUSY_STATS)
    app_with_connection(pod)
    p = agent.start("--poll-interval", "100ms", "--grace-period", "30")
    assert p.stdout is not None
    assert json.loads(p.stdout.readline())["msg"] == "drain_started"
    assert json.loads(p.stdout.readline())["msg"] == "census"
    envoy.kill()
    envoy.wait()
    out, _ = p.communicate(timeout=20)
    f = final([json.loads(x) for x in out.splitlines()])
    assert p.returncode == 4, f
    assert f["outcome"].startswith(f"the proxy exited during the drain (pid {envoy.pid}"), f


def test_status_port_closing_means_kubelet_moved_on(pod: Pod, agent: Agent) -> None:
    """pilot-agent closes its status port on SIGTERM, which kubelet sends once it stops
    waiting for the hook (its grace ended first): waiting longer only costs pilot-agent
    its drain."""
    # (held by a process that is not named as the proxy: only the port closes here)
    status = pod.hold({"comm": "status", "listen": [{"host": "0.0.0.0", "port": 15020}]},
                      uid=1337)
    app_with_connection(pod)
    p = agent.start("--poll-interval", "100ms", "--grace-period", "60")
    assert p.stdout is not None
    assert json.loads(p.stdout.readline())["msg"] == "drain_started"
    assert json.loads(p.stdout.readline())["msg"] == "census"
    pod.release(status)
    out, _ = p.communicate(timeout=20)
    f = final([json.loads(x) for x in out.splitlines()])
    assert p.returncode == 1, f
    assert f["outcome"].startswith("pilot-agent closed its status port 15020"), f
    assert f["seconds"] < 10


NATIVE_STATUS = json.dumps({"initContainers": ["istio-init", "istio-proxy"], "containers": ["app"],
                            "volumes": ["istio-envoy"], "imagePullSecrets": None,
                            "revision": "default"})
CLASSIC_STATUS = json.dumps({"initContainers": ["istio-init"], "containers": ["istio-proxy"],
                             "volumes": ["istio-envoy"], "imagePullSecrets": None,
                             "revision": "default"})


@pytest.mark.parametrize(("flags", "native"), [
    (("--native-sidecar", "true"), True),
    (("--native-sidecar", "auto", "--istio-status", NATIVE_STATUS), True),
    (("--native-sidecar", "auto", "--istio-status", CLASSIC_STATUS), False),
    (("--native-sidecar", "auto"), False),   # no status annotation: not injected natively
])
def test_native_sidecar_asks_pilot_agent_to_drain(pod: Pod, agent: Agent, flags: tuple[str, ...],
                                                  native: bool) -> None:
    """Istio's own native-sidecar hook is ``pilot-agent request POST drain``: pilot-agent
    drains Envoy now and exits at once on the SIGTERM that follows the app's exit. The
    agent does the same, instead of Envoy's drain_listeners (which would leave
    pilot-agent to drain a full terminationDrainDuration after that SIGTERM). With
    ``auto`` the injector's ``sidecar.istio.io/status`` (downward API) decides."""
    agent.admin()
    status_log = agent.tmp / "status-drains"
    status_log.write_text("")
    p = pod.ns.popen([sys.executable, FAKE_ADMIN, str(agent.stats), str(status_log), "15020",
                      "pilot-agent"], stdout=subprocess.PIPE, text=True)
    pod.procs.append(p)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    code, lines, _ = agent.run(*flags, "--grace-period", "30s")
    assert code == 0, lines
    assert lines[0]["msg"] == "drain_started" and lines[0]["nativeSidecar"] is native
    assert status_log.read_text().splitlines() == (["/drain"] if native else [])
    # Envoy's own drain_listeners only for a classic sidecar
    assert bool(agent.drains.read_text()) is not native
