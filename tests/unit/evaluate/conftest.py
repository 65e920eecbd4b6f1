"""Shared fixtures of the evaluator tests."""

from __future__ import annotations

import numpy as np
import pytest

import codesign.evaluate_delay as evaluate_delay
from codesign.workload.agent_load import agent_load, session_gaps
from codesign.workload.summary import summarize
from codesign.workload.synth import generate, preset


@pytest.fixture(scope="session")
def fleet64():
    """64 synthetic Claude-Code fleet sessions (seed 0), contexts up to ~900K tokens."""
    return generate(preset("claude-code-fleet").with_overrides(sessions=64, seed=0))


@pytest.fixture(scope="session")
def load64(fleet64):
    return agent_load(summarize(fleet64), session_gaps(fleet64), merge_tiers=True)


@pytest.fixture
def at_trace_timing(monkeypatch) -> None:
    """Read the hits at the trace's own timing, whatever the responses (no cache
    feedback, `evaluate_delay`): for tests of what the tiers and the work do at given
    hits."""
    monkeypatch.setattr(evaluate_delay, "MIN_DELAY_S", np.inf)
