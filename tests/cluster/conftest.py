"""Fixtures of the cluster tests: the live-command fixtures of livelib (crd, mesh_ns,
meshcfg), and for the node tests the one-file meshcfg-drain, built once per session."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlib import ROOT

from .livelib import crd, mesh_ns, meshcfg  # noqa: F401  (fixtures, registered here)


@pytest.fixture(scope="session")
def agent_binary() -> Iterator[Path]:
    out = Path(tempfile.mkdtemp(prefix="meshcfg-drain-node-"))
    subprocess.run([str(ROOT / "scripts" / "build-agent"), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    yield out / "meshcfg-drain"
    shutil.rmtree(out, ignore_errors=True)
