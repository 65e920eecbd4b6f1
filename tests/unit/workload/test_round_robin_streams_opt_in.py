"""Round-robin hit-curve streams are built only for callers that evaluate that router."""

from __future__ import annotations

import pytest

from codesign.errors import SpecError
from codesign.workload import load_trace
from codesign.workload.agent_load import ALL, agent_load, session_gaps
from codesign.workload.summary import summarize


def test_a_load_without_round_robin_skips_its_streams_and_says_so(shared_dir) -> None:
    trace = load_trace(shared_dir / "traces" / "claude-code-weka" / "trace_0001.json.gz")
    summary = summarize(trace)
    light = agent_load(summary, session_gaps(trace), merge_tiers=True, round_robin=False)
    curve = light.tiers[ALL].curve
    assert curve.round_robin_workers.size == 0
    with pytest.raises(SpecError, match="without round-robin streams"):
        curve.round_robin_hit_ratio(1e6, 8.0, 4.0)
    # a later caller that needs them gets a curve with them, the same single-cache table
    full = agent_load(summary, session_gaps(trace), merge_tiers=True)
    assert full.tiers[ALL].curve.round_robin_workers.size > 0
    assert (full.tiers[ALL].curve.hit_table == curve.hit_table).all()
