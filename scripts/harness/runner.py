"""One termination scenario: build the pod, load it, delete it, report JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

from harness import pilot_agent  # noqa: E402
from harness.kubelet import Container, Kubelet  # noqa: E402
from harness.netns import NetNS, raise_nofile  # noqa: E402
from harness.view import View, exec_record, pod_env  # noqa: E402

APP_UID = 1000
PROXY_UID = 1337
# proxyStatsMatcher per --stats: what render writes with drainAgent enabled (the agent's
# inclusions), Istio's default (none), a user's own matcher without the agent's
STATS_MATCHERS: dict[str, dict[str, Any] | None] = {
    "agent": {"inclusionSuffixes": ["downstream_rq_active", "downstream_cx_active"]},
    "istio-default": None,
    "user": {"inclusionPrefixes": ["http.10.1.2.3_"], "inclusionSuffixes": ["upstream_rq_active"]},
}
NETSTAT_LOOP = (
    "while [ $(netstat -plunt | grep tcp | grep -v envoy | wc -l) -ne 0 ]; do sleep 1; done"
)


HOST_NOTE = """\
needs: root (CAP_SYS_ADMIN, CAP_NET_ADMIN: namespaces, setuid to 1000 and 1337), the
  `ip` command (iproute2, for the veth), and `netstat` for --prestop netstat.
touches on the host, for the length of the run only:
  * a network namespace held by a file descriptor (no /run/netns entry, no `ip netns`
    name) and one veth pair (host side mh<h...>, a free 10.x.y.z/30 subnet);
  * a directory /tmp/meshcfg-pod-* (a venv-style directory linking to this Python, and
    the agent's state dir), removed at the end;
  * per pod process, a private mount namespace: a directory other uids cannot search
    above the checkout, the venv or the interpreter (a 0700 home, a 0700 mktemp -d) is
    covered there by a tmpfs that bind-mounts only those paths. Nothing is mounted in the
    host's namespace; no permission, owner or file outside /tmp/meshcfg-pod-* changes.
"""


Idle = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


def log(msg: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="termination-harness",
        description="Delete a 'pod' (app + istio-proxy stand-ins in a netns) the way kubelet "
        "does, with requests in flight, and report what the clients saw (one JSON line, last "
        "on stdout).",
        epilog=HOST_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--prestop", choices=("agent", "netstat", "none"), default="agent")
    p.add_argument("--request-seconds", type=float, default=4.0, help="S: length of each request")
    p.add_argument("--drain-seconds", type=float, default=1.0,
                   help="D: the proxy's terminationDrainDuration")
    p.add_argument("--grace-seconds", type=int, default=8,
                   help="G: terminationGracePeriodSeconds")
    p.add_argument("--requests", type=int, default=1, help="concurrent long requests")
    p.add_argument("--outbound", action="store_true",
                   help="requests are /call-out/S: the app calls an external service "
                   "through the proxy for S seconds")
    p.add_argument("--term-call", type=float, default=0.0,
                   help="the app makes an outbound call of this many seconds on SIGTERM")
    p.add_argument("--idle-clients", type=int, default=0,
                   help="downstream keep-alive connections left idle after one request")
    p.add_argument("--app-outbound-pool", type=int, default=0,
                   help="idle keep-alive connections from the app to the proxy")
    p.add_argument("--app-shutdown-delay", type=float, default=0.0,
                   help="the app keeps serving this long after SIGTERM before shutting down")
    p.add_argument("--proxy-pool", type=int, default=2,
                   help="idle pooled connections the proxy keeps to the app")
    p.add_argument("--status-port", type=int, default=15020,
                   help="pilot-agent's status listener (0: none)")
    p.add_argument("--no-admin-stats", action="store_true",
                   help="the proxy's admin /stats is unavailable")
    p.add_argument("--late-requests", type=int, default=0,
                   help="short requests sent on new connections after the deletion")
    p.add_argument("--late-after", type=float, default=1.0,
                   help="seconds after the deletion the late requests are sent")
    p.add_argument("--native-sidecar", action="store_true")
    p.add_argument("--pilot-agent", choices=("real", "standin"), default="real",
                   help="the proxy container's PID 1: Istio's pilot-agent (scripts/pilot-agent) "
                   "with the Envoy stand-in beneath it, or the Python stand-in of both")
    p.add_argument("--stats", choices=tuple(STATS_MATCHERS), default="agent",
                   help="the proxyStatsMatcher in PROXY_CONFIG (real pilot-agent)")
    p.add_argument("--exit-on-zero", action="store_true",
                   help="EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true for pilot-agent")
    p.add_argument("--agent-grace", type=int, default=None,
                   help="the grace period the agent is told (default: G, kubelet's)")
    p.add_argument("--min-drain", default=None, help="the agent's (default: the product's)")
    p.add_argument("--poll-interval", default=None, help="the agent's (default: the product's)")
    p.add_argument("--kill-envoy-at", type=float, default=None,
                   help="SIGKILL Envoy this many seconds after the deletion (a crash mid-drain)")
    p.add_argument("--load-share", type=float, default=0.99,
                   help="start the deletion once this share of the requests is in flight "
                   "or already answered")
    p.add_argument("--nofile", type=int, default=None,
                   help="hard RLIMIT_NOFILE of the pod's processes and the clients (a container "
                   "runtime's LimitNOFILE; default: as high as the host allows)")
    p.add_argument("--agent-bin", default=os.environ.get("MESHCFG_HARNESS_AGENT_BIN", ""),
                   help="run this meshcfg-drain binary instead of the source tree")
    p.add_argument("--name", default="", help="label copied into the result")
    return p.parse_args(argv)


class Scenario:
    # where clients send requests: the proxy's inbound listener directly, or (on the node,
    # behind istio-init's capture rules) the application port
    inbound_port = 15006

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        needed = [ROOT]
        if args.agent_bin:
            needed.append(os.path.dirname(os.path.abspath(args.agent_bin)))
        self.pilot_agent = pilot_agent.binary() if args.pilot_agent == "real" else ""
        if self.pilot_agent:
            needed.append(os.path.dirname(self.pilot_agent))
        self.view = View(needed)
        self.proxy_config: dict[str, Any] = {"terminationDrainDuration": f"{args.drain_seconds}s"}
        self.env = pod_env(ROOT)
        self.tmp = os.path.join(self.view.dir, "state")  # the agent's state dir and TMPDIR
        os.mkdir(self.tmp)
        os.chmod(self.tmp, 0o777)
        self.ns = NetNS(prefix="mh")
        self.processes: list[dict[str, Any]] = []
        self.upstream: subprocess.Popen[bytes] | None = None
        self.app: Container | None = None
        self.proxy: Container | None = None
        self.late: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.connection_close = 0
        self.deleted_at: float | None = None
        self.failed_before_deletion = 0

    # ---- pod construction -------------------------------------------------
    def start(self) -> None:
        a = self.args
        self.ns.create()
        up_port = 18080
        self.upstream = subprocess.Popen(
            [sys.executable, f"{HERE}/app.py", "--host", self.ns.host_ip, "--port", str(up_port),
             "--comm", "upstream"],
            stdout=subprocess.PIPE, env=self.env, preexec_fn=raise_nofile,
        )
        assert self.upstream.stdout is not None
        if b"listening" not in self.upstream.stdout.readline():
            raise RuntimeError("upstream service did not start")
        app_cmd = [self.view.python, f"{HERE}/app.py", "--upstream", f"{self.ns.host_ip}:{up_port}",
                   "--shutdown-delay", str(a.app_shutdown_delay), "--term-call", str(a.term_call),
                   "--outbound-pool", str(a.app_outbound_pool)]
        self.app = Container("app", self.ns.popen(app_cmd, uid=APP_UID, view=self.view,
                                                  stdout=subprocess.PIPE, env=self.env, cwd="/"))
        self.app.start_reader()
        proxy_cmd, proxy_env, proxy_cwd = self.proxy_command()
        self.proxy = Container(
            "proxy",
            self.ns.popen(proxy_cmd, uid=PROXY_UID, view=self.view, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=proxy_env, cwd=proxy_cwd),
            prestop=self.hook_factory(),
        )
        self.proxy.start_reader()
        # runc chowns a container's stdio to the container's user (fixStdioPermissions),
        # which is what lets the agent (uid 1337) open /proc/<pid 1>/fd/1
        for c, uid in ((self.app, APP_UID), (self.proxy, PROXY_UID)):
            assert c.proc.stdout is not None
            os.fchown(c.proc.stdout.fileno(), uid, uid)
        self.app.wait_log(lambda r: r.get("event") == "listening", 30)
        self.proxy.wait_log(lambda r: r.get("who") == "envoy" and r.get("event") == "ready", 30)
        if a.app_outbound_pool:
            self.app.wait_log(lambda r: r.get("event") == "pool_ready", 30)
        self.processes += [exec_record(pid) for pid in [self.upstream.pid, *self.ns.pids()]]

    def proxy_command(self) -> tuple[list[str], dict[str, str], str]:
        """PID 1 of the proxy container: Istio's pilot-agent, as injected, or the stand-in."""
        a = self.args
        if not self.pilot_agent:
            cmd = [self.view.program("pilot-agent"), f"{HERE}/proxy.py", "--role",
                   "pilot-agent", "--envoy", self.view.program("envoy"),
                   "--drain-seconds", str(a.drain_seconds),
                   "--status-port", str(a.status_port), "--pool-prewarm", str(a.proxy_pool)]
            if a.no_admin_stats:
                cmd.append("--no-stats")
            return cmd, self.env, "/"
        work = os.path.join(self.view.dir, "proxy")
        os.mkdir(work)
        pilot_agent.prepare(Path(work), self.view.program("envoy"), uid=PROXY_UID)
        self.proxy_config = pilot_agent.proxy_config(
            Path(work), a.drain_seconds, stats_matcher=STATS_MATCHERS[a.stats])
        extra = {"MESHCFG_ENVOY_POOL_PREWARM": str(a.proxy_pool),
                 "MESHCFG_ENVOY_NO_STATS": "1" if a.no_admin_stats else ""}
        cmd, env = pilot_agent.command_env(Path(work), self.proxy_config,
                                           exit_on_zero=a.exit_on_zero, extra=extra)
        return cmd, {**self.env, **env}, work

    def hook_factory(self) -> Any:
        a = self.args
        if a.prestop == "none":
            return None

        def start_hook() -> subprocess.Popen[bytes]:
            assert self.proxy is not None
            if a.prestop == "netstat":
                cmd = [shutil.which("sh") or "/bin/sh", "-c", NETSTAT_LOOP]
                env = dict(os.environ)
            else:
                cmd = [a.agent_bin] if a.agent_bin else [self.view.python, "-m", "drain_agent"]
                cmd.append("prestop")
                env = dict(self.env)
                # what the rendered hook gets: the grace baked in at render time (which
                # kubelet's may differ from: --agent-grace) and the injected PROXY_CONFIG;
                # a flag left out means the product's default
                env.update({
                    "MESHCFG_DRAIN_GRACE_PERIOD": str(a.agent_grace or a.grace_seconds),
                    "PROXY_CONFIG": json.dumps(self.proxy_config),
                    "MESHCFG_DRAIN_CONTAINER_LOG": f"/proc/{self.proxy.proc.pid}/fd/1",
                    "MESHCFG_DRAIN_STATE_DIR": self.tmp,
                    "MESHCFG_DRAIN_API_SERVER": "",
                    "MESHCFG_DRAIN_NATIVE_SIDECAR": "true" if a.native_sidecar else "false",
                    "TMPDIR": self.tmp,
                })
                for flag, value in (("MIN_DRAIN", a.min_drain), ("POLL_INTERVAL", a.poll_interval)):
                    if value is not None:
                        env[f"MESHCFG_DRAIN_{flag}"] = value
            hook = self.ns.popen(cmd, uid=PROXY_UID, view=self.view, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, env=env, cwd="/")
            self.processes.append(exec_record(hook.pid))
            return hook

        return start_hook

    def stop(self) -> None:
        for c in (self.app, self.proxy):
            if c is not None and c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
        if self.upstream is not None:
            self.upstream.kill()
            self.upstream.wait()
        self.ns.destroy()
        self.view.close()

    # ---- clients ----------------------------------------------------------
    async def one_request(self, path: str) -> str:
        status = await self._one_request(path)
        if status != "200" and self.deleted_at is None:
            self.failed_before_deletion += 1
        return status

    async def _one_request(self, path: str) -> str:
        """A request as an ingress gateway in front of the pod would see it.

        A connection to the pod's proxy that breaks before the response is what an
        ingress turns into a 503; the detail is kept in ``self.errors``.
        """
        from harness import http11

        try:
            r, w = await asyncio.open_connection(self.ns.pod_ip, self.inbound_port)
        except OSError as e:
            self.errors[f"connect:{e.errno}"] += 1
            return "503"
        try:
            w.write(http11.request("GET", path, f"{self.ns.pod_ip}:{self.inbound_port}"))
            await w.drain()
            resp = await http11.read_message(r)
            if resp is None:
                self.errors["eof"] += 1
                return "503"
            if resp.wants_close():
                self.connection_close += 1
            return str(resp.status)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as e:
            self.errors[type(e).__name__] += 1
            return "503"
        finally:
            w.close()

    async def idle_client(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        from harness import http11

        r, w = await asyncio.open_connection(self.ns.pod_ip, self.inbound_port)
        w.write(http11.request("GET", "/delay/0", f"{self.ns.pod_ip}:{self.inbound_port}"))
        await w.drain()
        await http11.read_message(r)
        return r, w

    # ---- the load: shared with the real node's scenarios (scripts/node/termination.py)
    async def start_load(self) -> tuple[Idle, str, list[asyncio.Task[str]]]:
        """The idle keep-alive clients, then the requests, in flight from now on."""
        a = self.args
        idle = [await self.idle_client() for _ in range(a.idle_clients)]
        path = f"/{'call-out' if a.outbound else 'delay'}/{a.request_seconds:g}"
        return idle, path, [asyncio.create_task(self.one_request(path)) for _ in range(a.requests)]

    async def late_load(self) -> list[asyncio.Task[str]]:
        """A rollout: other proxies still route to this pod for a moment after its stop."""
        await asyncio.sleep(self.args.late_after)
        self.connection_close = 0
        return [asyncio.create_task(self.one_request("/delay/0.2"))
                for _ in range(self.args.late_requests)]

    async def outcomes(self, tasks: list[asyncio.Task[str]], late: list[asyncio.Task[str]],
                       idle: Idle, stopping: Awaitable[Any]) -> Counter[str]:
        """The requests' statuses (the late ones' in self.late) once they are answered, or
        the grace period + 20 s passed, and the pod stopped."""
        done: set[asyncio.Task[str]] = set()
        if tasks or late:
            done, pending = await asyncio.wait(tasks + late, timeout=self.args.grace_seconds + 20)
            for t in pending:
                t.cancel()
        await stopping
        self.late = Counter(t.result() if t in done else "timeout" for t in late)
        for _, w in idle:
            w.close()
        return Counter(t.result() if t in done else "timeout" for t in tasks)

    async def run(self) -> dict[str, Any]:
        a = self.args
        assert self.app is not None and self.proxy is not None
        loop = asyncio.get_running_loop()
        idle, path, tasks = await self.start_load()
        n = a.requests
        if n:
            # a share of the load in flight (or already answered: a proxy refusing a few
            # while 10,000 connections open must not stall the run), then delete
            share = max(1, int(n * a.load_share))
            await loop.run_in_executor(None, lambda: self.app.wait_log(  # type: ignore[union-attr]
                lambda r: r.get("event") == "request_started" and r.get("path") == path
                and r.get("active", 0) + sum(t.done() for t in tasks) >= share, 60 + n / 20))
        kubelet = Kubelet(a.grace_seconds, native_sidecar=a.native_sidecar)
        log(f"deleting the pod: prestop={a.prestop} S={a.request_seconds} D={a.drain_seconds} "
            f"G={a.grace_seconds} requests={n}")
        self.deleted_at = time.monotonic()
        stopping = loop.run_in_executor(None, kubelet.delete_pod, self.app, self.proxy)
        if a.kill_envoy_at is not None:
            loop.call_later(a.kill_envoy_at, self.kill_envoy)
        late = await self.late_load() if a.late_requests else []
        statuses = await self.outcomes(tasks, late, idle, stopping)
        seconds_to_exit = max(self.app.exited_at or 0, self.proxy.exited_at or 0)
        return self.report(kubelet, statuses, seconds_to_exit)

    def kill_envoy(self) -> None:
        """A crash (OOM kill) of Envoy, not of the container's PID 1."""
        for pid in self.ns.pids():
            try:
                with open(f"/proc/{pid}/comm", encoding="ascii") as fh:
                    comm = fh.read().strip()
            except OSError:
                continue
            if comm == "envoy":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                log(f"killed envoy (pid {pid})")

    def report(self, k: Kubelet, statuses: Counter[str], seconds_to_exit: float) -> dict[str, Any]:
        a = self.args
        assert self.app is not None and self.proxy is not None
        agent_lines = [json.loads(x) for x in self.proxy.hook_log if x.startswith("{")]
        agent_final = next((r for r in reversed(agent_lines)
                            if r.get("msg") in ("drain_completed", "drain_timed_out")), None)
        container_log_lines = self.proxy.events()
        term_calls = self.app.events(event="shutdown_call_finished")
        killed_envoy = self.proxy.events(who="pilot-agent", event="envoy_killed") or [
            r for r in self.proxy.log if "Aborting proxy" in str(r.get("raw", ""))]
        result: dict[str, Any] = {
            "name": a.name,
            "prestop": a.prestop,
            "request_seconds": a.request_seconds,
            "drain_seconds": a.drain_seconds,
            "grace_seconds": a.grace_seconds,
            "native_sidecar": a.native_sidecar,
            "pilot_agent": a.pilot_agent,
            "stats": a.stats if self.pilot_agent else None,
            "agent_grace": a.agent_grace or a.grace_seconds,
            "sent": a.requests,
            "succeeded": statuses.get("200", 0),
            "failed": a.requests - statuses.get("200", 0),
            "statuses": dict(statuses),
            "connection_errors": dict(self.errors),
            # the Envoy stand-in's 503s: where (connect, request), on a pooled connection or
            # a new one, and the error
            "upstream_failures": dict(Counter(
                f"{r['stage']}{' pooled' if r['pooled'] else ''}: {r['error']}"
                for r in self.proxy.events(who="envoy", event="upstream_failed"))),
            "failed_before_deletion": self.failed_before_deletion,
            "app_shutdown": next(iter(self.app.events(event="shutdown_started")), None),
            "late_sent": a.late_requests,
            "late_succeeded": self.late.get("200", 0),
            "late_connection_close": self.connection_close if a.late_requests else None,
            "prestop_exit": self.proxy.prestop_exit,
            "prestop_seconds": self.proxy.prestop_seconds,
            "prestop_finished": self.proxy.prestop_finished,
            "proxy_sigterm_at": self.proxy.sigterm_at,
            "proxy_grace_after_hook": self.proxy.grace_after_hook,
            "envoy_killed_by_pilot_agent": bool(killed_envoy),
            "app_exited_at": self.app.exited_at,
            "app_killed": self.app.killed,
            "proxy_exited_at": self.proxy.exited_at,
            "proxy_killed": self.proxy.killed,
            "seconds_to_exit": seconds_to_exit,
            "term_call": term_calls[0] if term_calls else None,
            "idle_clients": a.idle_clients,
            "agent": agent_final,
            "hook_output_tail": self.proxy.hook_log[-8:],  # a crash's traceback, if any
            "processes": self.processes,
            "view_dir": self.view.dir,
            "host_interface": self.ns.host_if,
            "agent_in_container_log": any(r.get("logger") == "meshcfg-drain"
                                          for r in container_log_lines),
        }
        return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("termination-harness: needs root (network namespaces, uids)", file=sys.stderr)
        return 2
    if args.nofile:   # inherited by every process of the run (raising it fails as uid 1337)
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    else:
        raise_nofile()
    return play(Scenario(args))


def play(sc: Scenario) -> int:
    """Start the scenario, run it, always stop it; print its result as one JSON line."""
    try:
        sc.start()
        result = asyncio.run(sc.run())
    finally:
        sc.stop()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
