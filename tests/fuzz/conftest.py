"""Fixtures of the fuzz tests (see README.md in this directory)."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # fuzz_strategies, as the tests import it


@pytest.fixture
def sentinel(monkeypatch):
    """A name reachable from any Python eval: calling it records the call (formula
    text must never be executed)."""
    calls: list[object] = []
    monkeypatch.setattr(builtins, "sentinel", lambda *a: calls.append(a) or 1, raising=False)
    return calls
