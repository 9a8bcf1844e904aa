"""AGE as kubectl prints it: the Python port checked against apimachinery's own
duration.HumanDuration (tests/habits/kubectl_age, built from the Go module cache)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_meshcfg.core.listing import age, human_duration

HELPER = Path(__file__).resolve().parent / "kubectl_age"
YEAR = 365 * 86400
# The unit changes of HumanDuration, and a second either side of each.
EDGES = [edge + d for edge in (0, 120, 600, 3 * 3600, 8 * 3600, 48 * 3600, 8 * 86400,
                               2 * YEAR, 8 * YEAR) for d in (-1, 0, 1)]


class KubectlAge:
    """One long-running helper: a line of seconds in, kubectl's text out."""

    def __init__(self, binary: Path) -> None:
        self.proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)

    def __call__(self, seconds: int) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().rstrip("\n")

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def kubectl_age() -> Iterator[KubectlAge]:
    out = Path(tempfile.mkdtemp(prefix="kubectl-age-"))
    subprocess.run(["go", "build", "-mod=readonly", "-o", str(out / "kubectl-age"), "."],
                   cwd=HELPER, check=True, timeout=600)
    helper = KubectlAge(out / "kubectl-age")
    yield helper
    helper.close()
    shutil.rmtree(out, ignore_errors=True)


def test_the_issue_examples() -> None:
    assert [human_duration(s) for s in (102, 5 * 60 + 3, 2 * 86400 + 4 * 3600)] == \
        ["102s", "5m3s", "2d4h"]


def test_unit_edges_as_kubectl(kubectl_age: KubectlAge) -> None:
    for seconds in EDGES + list(range(-3, 130)):
        assert human_duration(seconds) == kubectl_age(seconds), seconds


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.integers(-5, 10 * YEAR), st.integers(0, 60).map(lambda d: d * 86400),
                 st.sampled_from(EDGES)))
def test_any_duration_as_kubectl(kubectl_age: KubectlAge, seconds: int) -> None:
    assert human_duration(seconds) == kubectl_age(seconds)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3 * YEAR), st.integers(0, 999_999))
def test_age_of_a_timestamp(kubectl_age: KubectlAge, seconds: int, micros: int) -> None:
    """Sub-second parts truncate, as time.Since(t).Seconds() does in kubectl."""
    now = datetime(2026, 12, 3, 7, 0, 0, tzinfo=UTC)
    created = (now - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = now + timedelta(microseconds=micros)
    assert age(created, later) == kubectl_age(seconds)
    assert age(None, now) == age("yesterday", now) == "<unknown>"
