"""Deployments the simulator does not replay are refused with the reason, not replayed
wrongly."""

from __future__ import annotations

import pytest

from codesign.deployment import Deployment
from codesign.errors import SpecError
from codesign.simulate import SimOptions, Simulator

BALANCED = """
model: deepseek-ai/DeepSeek-R1
mode: agg
engine: trtllm
adp_balance_timeout_iters: 60
pools:
  - {role: agg, system: b200_sxm, workers: 1, parallel: {tp: 1, dp: 8, ep: 8}}
"""


def test_attention_dp_balancing_is_refused(tool_trace):
    dep = Deployment.from_yaml(BALANCED)
    with pytest.raises(SpecError, match="not simulated"):
        Simulator(dep, tool_trace, SimOptions(sessions=2, total_sessions=2))
