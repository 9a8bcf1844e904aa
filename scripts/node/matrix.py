"""The termination matrix on the real node: every scenario of the harness
(tests/harness/harness_scenarios.py) plus the ones only a real API server and kubelet can
play (`kubectl delete --grace-period`, eviction), each as scripts/node/termination.py.

    python scripts/node/matrix.py --kubectl K --kubeconfig C [--parallel 2] [--only A,B]

prints one JSON result per line, then the Markdown table of docs/drain-agent.md (the
harness table's columns). The node's images must be imported (tests/nodelib.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from harness_scenarios import SCENARIOS  # type: ignore[import-not-found]  # noqa: E402

# 6 s requests: kubelet's stop call lags the API's deletion by up to ~2 s under load, and
# without the agent the request must still be cut (lag + D < S)
LONG = ["--request-seconds", "6", "--drain-seconds", "1"]
NODE_SCENARIOS: dict[str, dict[str, Any]] = {
    # kubectl delete --grace-period=10 on a pod whose spec says 30: kubelet's timer is 10 s,
    # and so is the agent's deadline (deletionGracePeriodSeconds from the API)
    "agent-delete-grace": {"args": ["--prestop", "agent", *LONG, "--grace-seconds", "30",
                                    "--delete-grace", "10"]},
    "none-delete-grace": {"args": ["--prestop", "none", *LONG, "--grace-seconds", "30",
                                   "--delete-grace", "10"]},
    # the Eviction API (kubectl drain): the pod's own grace period
    "agent-evict": {"args": ["--prestop", "agent", *LONG, "--grace-seconds", "10", "--evict"]},
    "none-evict": {"args": ["--prestop", "none", *LONG, "--grace-seconds", "10", "--evict"]},
}


def all_scenarios() -> dict[str, dict[str, Any]]:
    return {**SCENARIOS, **NODE_SCENARIOS}


def run(name: str, args: list[str], kubectl: str, kubeconfig: str) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "termination.py"), "--name", name, *args,
           "--kubectl", kubectl, "--kubeconfig", kubeconfig]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        return {"name": name, "error": f"exit {proc.returncode}", "stderr": proc.stderr[-3000:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_all(names: list[str], kubectl: str, kubeconfig: str,
            parallel: int = 2) -> dict[str, dict[str, Any]]:
    scenarios = all_scenarios()
    with ThreadPoolExecutor(parallel) as pool:
        futures = {n: pool.submit(run, n, scenarios[n]["args"], kubectl, kubeconfig)
                   for n in names}
        return {n: f.result() for n, f in futures.items()}


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['name']} | error: {r['error']} |" + " |" * 9
    late = bool(r.get("late_sent"))
    sent = r["late_sent"] if late else r["sent"]
    ok = r["late_succeeded"] if late else r["succeeded"]
    failed = sent - ok
    codes = ", ".join(k for k in sorted(r.get("statuses", {})) if k != "200")
    failed_text = f"{failed} ({codes})" if failed and codes else str(failed)
    s = "-" if not r["sent"] else f"{r['request_seconds']:g}"
    grace = str(r["grace_seconds"])
    if r.get("delete_grace") is not None:
        grace = f"{r['grace_seconds']} (delete {r['delete_grace']})"
    agent = r.get("agent") or {}
    if r["prestop"] == "agent":
        took = _num(agent.get("seconds"))
        exit_text = "-" if r["prestop_exit"] is None else str(r["prestop_exit"])
        if r.get("failed_prestop_hook"):
            exit_text += " (FailedPreStopHook)"
    elif r["prestop"] == "netstat":
        hook = (r["proxy_sigterm_at"] or 0) - (r["app_sigterm_at"] or 0)
        took, exit_text = f"~{hook:.2f}", "?"
    else:
        took, exit_text = "-", "-"
    killed = "**yes**" if r["proxy_killed"] else "no"
    return (f"| {r['name']} | {s} / {r['drain_seconds']:g} / {grace} | {sent} | {ok} | "
            f"{failed_text} | {exit_text} | {took} | {_num(r['app_sigterm_at'])} | "
            f"{_num(r['proxy_sigterm_at'])} | {_num(r['pod_gone_at'])} | {killed} | "
            f"{agent.get('outcome', '-')} |")


HEADER = ("| scenario | S / D / G | sent | ok | failed | prestop exit | prestop took | "
          "app SIGTERM at | proxy SIGTERM at | pod gone at | proxy SIGKILLed | agent outcome |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def table(results: dict[str, dict[str, Any]]) -> str:
    return "\n".join([HEADER, *(row(r) for r in results.values())])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--kubectl", required=True)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--only", default="")
    a = p.parse_args(argv)
    names = a.only.split(",") if a.only else list(all_scenarios())
    results = run_all(names, a.kubectl, a.kubeconfig, a.parallel)
    for r in results.values():
        print(json.dumps(r))
    print(table(results))
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
