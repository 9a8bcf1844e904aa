"""Runs every termination scenario once per session, several at a time.

Each scenario is its own ``scripts/termination-harness`` process with its own network
namespace, so they run in parallel; the tests then only read the results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))

from harness_scenarios import SCENARIOS  # noqa: E402

PARALLEL = int(os.environ.get("MESHCFG_HARNESS_PARALLEL", "4"))


def run_scenario(name: str, args: list[str]) -> dict[str, Any]:
    cmd = [str(ROOT / "scripts" / "termination-harness"), "--name", name, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"name": name, "error": f"exit {proc.returncode}", "stderr": proc.stderr[-3000:]}
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr"] = proc.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def harness_results() -> dict[str, dict[str, Any]]:
    if os.geteuid() != 0:
        raise RuntimeError("the termination harness needs root (network namespaces)")
    # the heaviest first, so the pool's tail is short
    order = sorted(SCENARIOS, key=lambda n: -SCENARIOS[n].get("weight", 1))
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {n: pool.submit(run_scenario, n, SCENARIOS[n]["args"]) for n in order}
        return {n: f.result() for n, f in futures.items()}
