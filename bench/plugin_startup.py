"""Benchmark: start-up of the one-file plugin binary against the virtualenv entry point.

Contenders, run interleaved (round robin, so load changes hit all alike), each a fresh
process: the virtualenv's console script `.venv/bin/kubectl-meshcfg` (the baseline), the
one-file binary that ships (`scripts/build-plugin`) and, for comparison, PyInstaller's
one-directory form of the same build (`scripts/build-plugin --onedir`). Commands:
`--help` and `explain --local -f examples -A`. Each run's CPU (user + system, from wait4)
and wall time; medians, and ratios to the virtualenv measured in the same run. Every
contender's output must equal the virtualenv's.

Usage: .venv/bin/python bench/plugin_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "--help": ["--help"],
    "explain --local": ["explain", "--local", "-f", str(ROOT / "examples"), "-A"],
}


def build(out: Path, *flags: str) -> Path:
    r = subprocess.run([str(ROOT / "scripts" / "build-plugin"), "--out", str(out), *flags],
                       stdout=subprocess.PIPE, text=True, check=True)
    return Path(r.stdout.strip().splitlines()[-1])


def run_once(argv: list[str]) -> tuple[float, float, bytes]:
    """(cpu seconds, wall seconds, stdout) of one run."""
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, write_fd, 1),
                                       (os.POSIX_SPAWN_CLOSE, read_fd)])
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} exited {os.waitstatus_to_exitcode(status)}")
    return usage.ru_utime + usage.ru_stime, wall, b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshcfg-bench-plugin-") as tmp:
        contenders = {
            "virtualenv": ROOT / ".venv" / "bin" / "kubectl-meshcfg",
            "one-file binary": build(Path(tmp) / "onefile"),
            "one-dir build": build(Path(tmp) / "onedir", "--onedir"),
        }
        size = contenders["one-file binary"].stat().st_size / 2**20
        print(f"one-file binary: {size:.1f} MiB; load average {os.getloadavg()}")
        print("| command | contender | CPU median | wall median | CPU ratio | wall ratio |")
        print("|---|---|---|---|---|---|")
        for label, command in COMMANDS.items():
            cpu: dict[str, list[float]] = {name: [] for name in contenders}
            wall: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(args.runs):
                expected = None
                for name, binary in contenders.items():
                    c, w, out = run_once([str(binary), *command])
                    expected = out if expected is None else expected
                    assert out == expected, f"{name} printed something else for {label}"
                    cpu[name].append(c)
                    wall[name].append(w)
            base_cpu, base_wall = statistics.median(cpu["virtualenv"]), statistics.median(wall["virtualenv"])
            for name in contenders:
                c, w = statistics.median(cpu[name]), statistics.median(wall[name])
                print(f"| `{label}` | {name} | {c * 1000:.0f} ms | {w * 1000:.0f} ms "
                      f"| {c / base_cpu:.2f} | {w / base_wall:.2f} |")
        print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
