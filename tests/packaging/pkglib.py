"""Helpers shared by the packaging tests and their fixtures."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Release:
    """What scripts/release-plugin wrote: the archive and the manifest with its sha256."""

    archive: Path
    manifest: Path


def script_output(*argv: str | Path, timeout: float = 900) -> str:
    """The last stdout line of a project script that must succeed."""
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]
