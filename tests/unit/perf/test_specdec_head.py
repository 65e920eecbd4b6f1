"""Speculative decoding's vocabulary head, by hand: a verify step scores every draft
position, and each draft pass runs the whole head (MTP shares the target's lm_head)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codesign.perf.step import StepLoad, step_time, verify_and_draft_s
from tests.unit.perf.test_step_roofline import BF16, LAY1, eff, hw, one, profile

# the tiny model's head: 32,000 x 1,024 bf16 weights (65.5 MB, 65.5 us at 1 TB/s) and
# 2 x 32,000 x 1,024 = 65.5 MFLOP per scored token (65.5 ns at 1 PFLOP/s)
HEAD_BYTES = 32000 * 1024 * 2.0
HEAD_FLOPS = 2.0 * 32000 * 1024


def _head_s(tokens: float) -> float:
    return max(tokens * HEAD_FLOPS / 1e15, HEAD_BYTES / 1e12)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_a_verify_step_scores_every_draft_position(k: int) -> None:
    n, ctx = 4096.0, 1000.0
    verify = replace(StepLoad(one(n), one(ctx), one(n * k), one(ctx), one(n)), pf_reads_cache=False)
    t = step_time(profile(), hw(), LAY1, verify, BF16, eff())
    # n (k + 1) positions: 4096 x 8 x 65.5 ns = 2.15 ms at k = 7 (it had scored 2n)
    assert t["lm_head"][0] == pytest.approx(_head_s(n * (k + 1)))
    # a prefill scores only each sequence's last token
    prefill = StepLoad(one(0), one(0), one(n * k), one(0), one(n))
    assert step_time(profile(), hw(), LAY1, prefill, BF16, eff())["lm_head"][0] == pytest.approx(
        _head_s(n)
    )


def test_each_draft_pass_runs_the_whole_head() -> None:
    prof, n = profile(), 4096.0
    dec, _, draft = verify_and_draft_s(prof, hw(), LAY1, one(n), one(1000), one(3), BF16, eff())
    head = _head_s(n)
    # one decoder layer's share of the step without its head, plus the whole head
    assert draft[0] == pytest.approx((dec[0] - head) / prof.layers + head, rel=1e-9)
