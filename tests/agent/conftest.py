"""Fixtures for the drain agent's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from agent_helpers import NetNS, Pod


@pytest.fixture

def pod() -> Iterator[Pod]:
    if os.geteuid() != 0:
        raise RuntimeError("the agent tests need root (network namespaces)")
    with NetNS(prefix="ma", veth=False) as ns:
        p = Pod(ns)
        try:
            yield p
        finally:
            p.close()
