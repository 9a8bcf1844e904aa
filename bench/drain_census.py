"""meshcfg-drain vs the netstat preStop loop: per-poll CPU and detection latency.

    sudo .venv/bin/python bench/drain_census.py [--sizes 10,1000,10000] [--binary PATH]

For each size N, in a network namespace of its own: two "app" processes (uid 1000) hold
the two ends of N loopback connections (2N ESTABLISHED sockets) and a listener; an "envoy"
process (uid 1337) holds its listeners and serves a fake admin /stats. Then, in the same
run and as uid 1337 (the proxy's user, as in a pod):

* per-poll CPU: one iteration of ``netstat -plunt | grep tcp | grep -v envoy | wc -l``
  (CPU of sh + netstat + grep + wc, from wait4) vs one poll of the agent (census plus its
  admin /stats call, averaged over polls as the agent makes them: a full census every
  ``FULL_CENSUS_EVERY``, quick ones between; the full and the quick census alone and
  ``psutil.net_connections`` shown for reference);
* detection latency: the app closes every connection and its listener; time until the
  netstat loop (``sleep 1`` between checks) and ``meshcfg-drain prestop`` (200 ms poll)
  exit.
With --binary, also the one-file binary's size, start-up time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from harness.netns import NetNS, raise_nofile  # noqa: E402
from harness.view import View, pod_env  # noqa: E402

NETSTAT_BODY = "netstat -plunt | grep tcp | grep -v envoy | wc -l"
SH = shutil.which("sh") or "/bin/sh"
NETSTAT_LOOP = f"while [ $({NETSTAT_BODY}) -ne 0 ]; do sleep 1; done"
PROXY_UID, APP_UID = 1337, 1000
FAKE_ADMIN = ROOT / "tests" / "agent" / "fake_admin.py"


# ---------------------------------------------------------------- in-netns roles
def role_holder(n: int, side: str) -> None:
    """One end of n loopback connections; commands on stdin: open, close.

    Two processes (server and client side) so that each stays under the machine's hard
    RLIMIT_NOFILE (20,000 here) at 10,000 connections.
    """
    raise_nofile(2 * n + 1024)
    held: list[socket.socket] = []
    listener: socket.socket | None = None
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "open" and side == "server":
            listener = socket.create_server(("127.0.0.1", 8080), backlog=4096)
            print("listening", flush=True)
            for _ in range(n):
                held.append(listener.accept()[0])
            print("opened", flush=True)
        elif cmd == "open":
            for _ in range(n):
                held.append(socket.create_connection(("127.0.0.1", 8080)))
            print("opened", flush=True)
        elif cmd == "close":
            for s in held:
                s.close()
            held.clear()
            if listener is not None:
                listener.close()
                listener = None
            print(f"closed {time.monotonic()}", flush=True)


def role_census(polls: int) -> None:
    """Per-poll CPU of the agent's census (+ admin stats), and of psutil.net_connections."""
    import psutil

    from drain_agent.census import Census
    from drain_agent.envoy_admin import EnvoyAdmin, in_flight
    from drain_agent.prestop import FULL_CENSUS_EVERY

    census = Census()
    admin = EnvoyAdmin("http://127.0.0.1:15000", 1.0)
    census.run()  # first poll maps the proxy's processes once
    stats = admin.stats()
    assert stats is not None
    census.run()
    out: dict[str, Any] = {}
    t = time.process_time()
    for _ in range(polls):
        res = census.run()
    out["census"] = (time.process_time() - t) / polls
    out["counted"] = res.total
    t = time.process_time()
    for _ in range(polls):
        assert not census.run(quick=True).complete
    out["quick"] = (time.process_time() - t) / polls
    t = time.process_time()
    for i in range(polls):  # as the agent polls: a full census every FULL_CENSUS_EVERY
        census.run(quick=i % FULL_CENSUS_EVERY != 0)
        s = admin.stats()
        assert s is not None and in_flight(s) == 1
    out["poll"] = (time.process_time() - t) / polls
    k = max(2, polls // 4)
    t = time.process_time()
    for _ in range(k):
        psutil.net_connections("tcp")
    out["psutil"] = (time.process_time() - t) / k
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- driver
class Pod:
    def __init__(self, n: int, view: View) -> None:
        self.n = n
        self.ns = NetNS(prefix="mb", veth=False)
        self.view = view
        self.env = pod_env(str(ROOT))
        self.procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Pod:
        self.ns.create()
        stats = Path(self.view.dir) / "stats"
        # with the admin's own counters: the names are exported (not filtered)
        stats.write_text("http.inbound_0.0.0.0_8080.downstream_rq_active: 1\n"
                         "http.admin.downstream_rq_active: 1\n"
                         "listener.admin.downstream_cx_active: 1\n")
        stats.chmod(0o644)
        # a program named envoy: netstat -p names processes by their argv[0]
        self.admin = self.ns.popen([self.view.program("envoy"), str(FAKE_ADMIN), str(stats),
                                    "/dev/null"], uid=PROXY_UID, view=self.view,
                                   stdout=subprocess.PIPE, text=True, env=self.env)
        self.procs.append(self.admin)
        assert self.admin.stdout is not None and self.admin.stdout.readline().strip() == "ready"
        self.server = self.holder("server")
        self.client = self.holder("client")
        return self

    def holder(self, side: str) -> subprocess.Popen[str]:
        p = self.ns.popen([self.view.python, __file__, "--role", "holder", "--side", side,
                           "--n", str(self.n)], uid=APP_UID, view=self.view, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, env=self.env)
        self.procs.append(p)
        return p

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.ns.destroy()

    @staticmethod
    def send(p: subprocess.Popen[str], c: str) -> None:
        assert p.stdin is not None
        p.stdin.write(c + "\n")
        p.stdin.flush()

    @staticmethod
    def reply(p: subprocess.Popen[str]) -> str:
        assert p.stdout is not None
        return p.stdout.readline().strip()

    def open(self) -> None:
        self.send(self.server, "open")
        assert self.reply(self.server) == "listening"
        self.send(self.client, "open")
        assert self.reply(self.client) == "opened"
        assert self.reply(self.server) == "opened"

    def close(self) -> float:
        """Close everything (connections, listener); the moment the last close returned."""
        self.send(self.server, "close")
        self.send(self.client, "close")
        return max(float(self.reply(p).split()[1]) for p in (self.server, self.client))

    def run_as_proxy(self, args: list[str], **kw: Any) -> subprocess.Popen[str]:
        return self.ns.popen(args, uid=PROXY_UID, view=self.view, text=True, env=self.env,
                             **kw)


def netstat_cpu(pod: Pod, polls: int) -> float:
    total = 0.0
    for _ in range(polls):
        p = pod.run_as_proxy([SH, "-c", NETSTAT_BODY], stdout=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0
        total += ru.ru_utime + ru.ru_stime
    return total / polls


def netstat_latency(pod: Pod) -> float:
    p = pod.run_as_proxy([SH, "-c", NETSTAT_LOOP])
    time.sleep(1.5)  # let the loop run a few real iterations first: that is the point
    closed = pod.close()
    p.wait(120)
    return time.monotonic() - closed


def agent_latency(pod: Pod, agent: list[str]) -> float:
    env_extra = {"MESHCFG_DRAIN_USE_STATS": "false", "MESHCFG_DRAIN_DRAIN_LISTENERS": "false",
                 "MESHCFG_DRAIN_API_SERVER": "", "MESHCFG_DRAIN_CONTAINER_LOG": "",
                 "MESHCFG_DRAIN_STATE_DIR": "", "MESHCFG_DRAIN_GRACE_PERIOD": "300",
                 "MESHCFG_DRAIN_MIN_DRAIN": "0s"}  # detection itself, not the minimum drain
    p = pod.ns.popen([*agent, "prestop"], uid=PROXY_UID, view=pod.view, text=True,
                     env={**pod.env, **env_extra}, stdout=subprocess.PIPE)
    assert p.stdout is not None
    for line in p.stdout:  # wait for its first census with everything open
        rec = json.loads(line)
        if rec["msg"] == "census":
            assert rec["total"] == 2 * pod.n, rec
            break
    time.sleep(0.5)
    closed = pod.close()
    p.stdout.read()
    p.wait(60)
    ended = time.monotonic()
    assert p.returncode == 0
    return ended - closed


def measure(n: int, polls: int, reps: int, view: View) -> dict[str, Any]:
    agent = [view.python, "-m", "drain_agent"]
    with Pod(n, view) as pod:
        pod.open()
        c = pod.run_as_proxy([view.python, __file__, "--role", "census", "--polls", str(polls)],
                             stdout=subprocess.PIPE)
        out, _ = c.communicate(timeout=600)
        agent_cpu = json.loads(out)
        ns_cpu = netstat_cpu(pod, polls)
        lat_netstat, lat_agent = [], []
        for _ in range(reps):
            lat_agent.append(agent_latency(pod, agent))
            pod.open()
            lat_netstat.append(netstat_latency(pod))
            pod.open()
    return {"n": n, "netstat_cpu": ns_cpu, **{f"agent_{k}": v for k, v in agent_cpu.items()},
            "lat_netstat": statistics.median(lat_netstat), "lat_agent": statistics.median(lat_agent),
            "lat_netstat_all": lat_netstat, "lat_agent_all": lat_agent}


def binary_numbers(binary: Path, view: View) -> dict[str, Any]:
    starts, rss = [], []
    with NetNS(prefix="mb", veth=False) as ns:
        for _ in range(5):
            t = time.monotonic()
            p = ns.popen([str(binary), "census", "-o", "json"], uid=PROXY_UID, view=view,
                         stdout=subprocess.DEVNULL, env={"TMPDIR": "/tmp"})
            _, _, ru = os.wait4(p.pid, 0)
            p.returncode = 0
            starts.append(time.monotonic() - t)
            rss.append(ru.ru_maxrss)  # KiB; wait4 covers the bootloader and its child
    return {"size_mb": binary.stat().st_size / 1e6, "start_s": statistics.median(starts),
            "rss_mb": max(rss) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=("holder", "census"))
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--side", choices=("server", "client"), default="server")
    ap.add_argument("--polls", type=int, default=20)
    ap.add_argument("--sizes", default="10,1000,10000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--binary", default="")
    args = ap.parse_args()
    if args.role == "holder":
        role_holder(args.n, args.side)
        return
    if args.role == "census":
        role_census(args.polls)
        return
    if os.geteuid() != 0:
        sys.exit("bench/drain_census.py needs root (network namespaces, uids)")
    raise_nofile(200000)
    extra = [os.path.dirname(os.path.abspath(args.binary))] if args.binary else []
    with View([str(ROOT), *extra]) as view:
        bench(args, view)


def bench(args: argparse.Namespace, view: View) -> None:
    print(f"# load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        polls = 20 if n <= 1000 else 10
        r = measure(n, polls, args.reps, view)
        rows.append(r)
        print(json.dumps(r), flush=True)
    print()
    print("| connections (sockets) | netstat loop CPU/poll | agent CPU/poll (census + stats) "
          "| census: full / quick | psutil.net_connections | CPU ratio agent/netstat "
          "| detection: netstat loop | detection: agent (200 ms poll) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} ({r['agent_counted']:,}) | {r['netstat_cpu'] * 1000:.1f} ms "
              f"| {r['agent_poll'] * 1000:.1f} ms | {r['agent_census'] * 1000:.1f} / "
              f"{r['agent_quick'] * 1000:.1f} ms | {r['agent_psutil'] * 1000:.1f} ms "
              f"| {r['agent_poll'] / r['netstat_cpu']:.2f} "
              f"| {r['lat_netstat'] * 1000:.0f} ms | {r['lat_agent'] * 1000:.0f} ms |")
    if args.binary:
        b = binary_numbers(Path(args.binary), view)
        print()
        print(f"binary: {b['size_mb']:.1f} MB, start-up (census, empty pod) "
              f"{b['start_s'] * 1000:.0f} ms median of 5, peak RSS {b['rss_mb']:.1f} MB")
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
