"""bench/drain_census.py stays runnable (smallest size, one repetition)."""

from __future__ import annotations

import json
import subprocess
import sys

from agent_helpers import ROOT


def test_drain_census_benchmark_runs() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "drain_census.py"), "--sizes", "10",
                        "--reps", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert len(rows) == 1 and rows[0]["agent_counted"] == 20
    assert rows[0]["netstat_cpu"] > 0 and rows[0]["agent_poll"] > 0
    assert "| connections (sockets) |" in r.stdout
