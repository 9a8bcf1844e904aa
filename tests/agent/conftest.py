"""Fixtures for the drain agent's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from agent_helpers import ROOT, NetNS, Pod, View


@pytest.fixture(scope="session")
def view() -> Iterator[View]:
    """What the pod's uids need to run this checkout's Python (see harness/view.py)."""
    with View([str(ROOT)]) as v:
        yield v


@pytest.fixture
def pod(view: View) -> Iterator[Pod]:
    if os.geteuid() != 0:
        raise RuntimeError("the agent tests need root (network namespaces)")
    with NetNS(prefix="ma", veth=False) as ns:
        p = Pod(ns, view)
        try:
            yield p
        finally:
            p.close()
