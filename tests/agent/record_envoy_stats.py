"""Records Envoy admin /stats as the agent reads them, from the Envoy stand-in running
under Istio's real pilot-agent (scripts/pilot-agent) and the bootstrap it writes.

    sudo .venv/bin/python tests/agent/record_envoy_stats.py     # rewrites data/envoy-stats-*.json

Each case runs, in a network namespace of its own: the harness app on 8080, pilot-agent
(PROXY_CONFIG of the case; the stand-in as its binaryPath, concurrency 2), then through
15006 two idle keep-alive connections and one request in flight, and saves what
``GET /stats?usedonly&filter=(downstream_rq_active|downstream_cx_active)$`` answered,
with the stats matcher pilot-agent put in the bootstrap. ``test_envoy_stats.py`` checks
the agent against these.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from harness import pilot_agent  # noqa: E402

from drain_agent.envoy_admin import REQUIRED_SUFFIXES, STATS_QUERY  # noqa: E402

CASES: dict[str, dict[str, object]] = {
    # Istio's defaults: neither name is exported
    "istio-default": {},
    # a user's own matcher, without the agent's inclusions
    "user-matcher": {"proxyStatsMatcher": {"inclusionPrefixes": ["http.10.1.2.3_"],
                                           "inclusionSuffixes": ["upstream_rq_active"]}},
    # what `kubectl meshcfg render` writes with drainAgent enabled (user's + the agent's)
    "agent-inclusions": {"proxyStatsMatcher": {
        "inclusionPrefixes": ["http.10.1.2.3_"],
        "inclusionSuffixes": ["upstream_rq_active", *REQUIRED_SUFFIXES]}},
    # EXIT_ON_ZERO_ACTIVE_CONNECTIONS: Istio adds downstream_cx_active only
    "exit-on-zero": {"env": {"EXIT_ON_ZERO_ACTIVE_CONNECTIONS": "true"}},
}


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)  # polling for a port to open: nothing to wait on instead


def inside(case: str, workdir: Path) -> None:
    """Runs in the case's network namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    spec = CASES[case]
    pc = pilot_agent.proxy_config(workdir, 5, stats_matcher=spec.get("proxyStatsMatcher"))
    argv, env = pilot_agent.command_env(workdir, pc, extra={
        "MESHCFG_ENVOY_POOL_PREWARM": "0", **dict(spec.get("env", {}))})  # type: ignore[arg-type]
    app = subprocess.Popen([sys.executable, str(ROOT / "scripts/harness/app.py")],
                           stdout=subprocess.DEVNULL)
    agent = subprocess.Popen(argv, cwd=workdir,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        wait_port(8080)
        wait_port(15000)
        wait_port(15006)
        idle = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", 15006))
            s.sendall(b"GET /delay/0 HTTP/1.1\r\nHost: web\r\n\r\n")
            s.recv(4096)
            idle.append(s)
        busy = socket.create_connection(("127.0.0.1", 15006))
        busy.sendall(b"GET /delay/5 HTTP/1.1\r\nHost: web\r\n\r\n")
        time.sleep(0.5)  # let the request reach the app (it runs for 5 s)
        with urllib.request.urlopen(f"http://127.0.0.1:15000{STATS_QUERY}", timeout=5) as r:
            body = r.read().decode()
        bootstrap = json.loads((workdir / "etc" / "envoy-rev.json").read_text())
        print(json.dumps({"case": case, "proxyConfig": spec,
                          "statsMatcher": bootstrap["stats_config"]["stats_matcher"],
                          "open": {"idleKeepAlive": 2, "requestsInFlight": 1},
                          "query": STATS_QUERY, "body": body}, indent=1))
    finally:
        os.killpg(agent.pid, signal.SIGKILL)  # pilot-agent and its envoy
        app.kill()
        agent.wait()
        app.wait()


def record(case: str) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="meshcfg-stats-"))
    try:
        pilot_agent.prepare(work, sys.executable)
        out = subprocess.run(["unshare", "-n", sys.executable, __file__, "--inside", case,
                              str(work)], check=True, capture_output=True, text=True,
                             timeout=120)
        return dict(json.loads(out.stdout))
    finally:
        shutil.rmtree(work)


def main() -> None:
    if sys.argv[1:2] == ["--inside"]:
        inside(sys.argv[2], Path(sys.argv[3]))
        return
    pilot_agent.binary()  # built before the first case, not inside it
    for case in CASES:
        rec = record(case)
        path = HERE / "data" / f"envoy-stats-{case}.json"
        path.write_text(json.dumps(rec, indent=1) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(str(rec['body']).splitlines())} stats")


if __name__ == "__main__":
    main()
