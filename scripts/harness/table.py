"""The scenario table of docs/drain-agent.md: every ``agent-*`` scenario of the harness
tests, run once each with the agent, the netstat loop and no preStop hook.

    sudo .venv/bin/python scripts/harness/table.py [--parallel 4] [--only NAME,...] [--extra-10k]

Prints a Markdown table: per contender, requests sent / succeeded / failed (late
requests counted in), the hook's exit code (``-`` none, ``abandoned`` when kubelet
stopped waiting) and the seconds from the deletion until the pod was gone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "harness"))

from harness_scenarios import SCENARIOS  # noqa: E402

CONTENDERS = ("agent", "netstat", "none")
TEN_K = ["--requests", "10000", "--request-seconds", "3", "--drain-seconds", "1",
         "--grace-seconds", "20"]


def without_prestop(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--prestop":
            skip = True
        else:
            out.append(a)
    return out


def run(name: str, prestop: str, args: list[str]) -> dict[str, Any]:
    cmd = [str(ROOT / "scripts/termination-harness"), "--name", name, "--prestop", prestop, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = p.stdout.strip().splitlines()
    if p.returncode or not lines:
        return {"error": p.stderr[-500:]}
    return dict(json.loads(lines[-1]))


def cell(r: dict[str, Any]) -> str:
    if "error" in r:
        return "error"
    sent = r["sent"] + r["late_sent"]
    ok = r["succeeded"] + r["late_succeeded"]
    hook = ("-" if r["prestop"] == "none" else
            "abandoned" if not r["prestop_finished"] else str(r["prestop_exit"]))
    return f"{sent} / {ok} / {sent - ok} | {hook} | {r['seconds_to_exit']:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--only", default="")
    ap.add_argument("--extra-10k", action="store_true", help="add the 10,000-connection row")
    a = ap.parse_args()
    rows = {n: without_prestop(s["args"]) for n, s in SCENARIOS.items() if n.startswith("agent-")}
    if a.extra_10k:
        rows["agent-10000"] = TEN_K
    if a.only:
        rows = {n: rows[n] for n in a.only.split(",")}
    load = os.getloadavg()[0]
    with ThreadPoolExecutor(a.parallel) as pool:
        futures = {(n, c): pool.submit(run, n, c, args) for n, args in rows.items()
                   for c in CONTENDERS}
        results = {k: f.result() for k, f in futures.items()}
    print(f"<!-- {time.strftime('%Y-%m-%d')}, load average {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores -->")
    head = " | ".join(f"{c}: sent / ok / failed | hook exit | pod gone (s)" for c in CONTENDERS)
    print(f"| scenario (name[5:]) | S / D / G | {head} |")
    print("|---|---|" + "---|---|---|" * len(CONTENDERS))
    for n in rows:
        r0 = results[(n, "agent")]
        s_ = f"{r0.get('request_seconds', 0):g}" if r0.get("sent") else "-"  # no long requests
        sdg = (f"{s_} / {r0.get('drain_seconds', 0):g} / "
               f"{r0.get('grace_seconds', 0)}")
        cells = " | ".join(cell(results[(n, c)]) for c in CONTENDERS)
        print(f"| {n[len('agent-'):]} | {sdg} | {cells} |")


if __name__ == "__main__":
    main()
