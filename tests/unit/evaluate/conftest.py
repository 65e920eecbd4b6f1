"""Shared fixtures of the evaluator tests."""

from __future__ import annotations

import numpy as np
import pytest

import codesign.evaluate_delay as evaluate_delay


@pytest.fixture
def at_trace_timing(monkeypatch) -> None:
    """Read the hits at the trace's own timing, whatever the responses (no cache
    feedback, `evaluate_delay`): for tests of what the tiers and the work do at given
    hits."""
    monkeypatch.setattr(evaluate_delay, "MIN_DELAY_S", np.inf)
