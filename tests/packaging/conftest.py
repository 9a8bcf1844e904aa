"""Fixtures for the packaging tests: the one-file plugin binary, the krew release, krew.

* ``plugin_binary`` (session): ``scripts/build-plugin`` into a temporary directory (a cache
  hit unless the sources changed, see scripts/onefile.py).
* ``venv_plugin``: the virtualenv's ``kubectl-meshcfg`` console script, the reference the
  binary must behave exactly like.
* ``release`` (session): ``scripts/release-plugin --binary <plugin_binary>``: the archive and
  the filled manifest.
* ``krew_bin`` (session): the directory of krew and validate-krew-manifest built by
  ``scripts/build-krew`` from the sigs.k8s.io/krew Go module.
* ``kubectl_bin`` (session): the test cluster's kubectl (no cluster is started for it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterlib import run_testcluster
from pkglib import ROOT, Release, script_output


@pytest.fixture(scope="session")
def plugin_binary() -> Iterator[Path]:
    out = Path(tempfile.mkdtemp(prefix="meshcfg-plugin-bin-"))
    yield Path(script_output(ROOT / "scripts" / "build-plugin", "--out", out))
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def venv_plugin() -> Path:
    return Path(sys.executable).parent / "kubectl-meshcfg"


@pytest.fixture(scope="session")
def release(plugin_binary: Path) -> Iterator[Release]:
    out = Path(tempfile.mkdtemp(prefix="meshcfg-release-"))
    r = subprocess.run([str(ROOT / "scripts" / "release-plugin"), "--out", str(out),
                        "--binary", str(plugin_binary)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    archive, manifest = (Path(line) for line in r.stdout.splitlines()[-2:])
    yield Release(archive, manifest)
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def krew_bin() -> Path:
    return Path(script_output(ROOT / "scripts" / "build-krew"))


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    return Path(run_testcluster("bin", "kubectl"))
