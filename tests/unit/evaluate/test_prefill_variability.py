"""The prefill time's variability for the M/G/1 wait (`TierLoad.prefill_scv`): a whole long
context that misses costs its tokens and its attention pairs, which grow with the square
of its length."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.evaluate_core import pair_tokens
from codesign.models import load_model
from codesign.perf.calibration import load_calibration
from codesign.perf.hardware import hw_vectors
from codesign.perf.profile import build_profile
from codesign.workload.agent_load import _tier_load


def _two_requests():
    # prompts of 1,000 and 100,000 tokens, 100 and 1,000 of them new
    return _tier_load(
        "main",
        context=np.array([1_000.0, 100_000.0]),
        new=np.array([100.0, 1_000.0]),
        output=np.array([10.0, 10.0]),
        gap=np.array([1.0, 1.0]),
    )


def test_scv_of_tokens_and_pairs_by_hand() -> None:
    """With no misses beyond the requests' own new tokens (the grid's hit 1, where the
    share of whole-context misses is 0) each request keeps its prefix: works 100 + k 95,000 and
    1,000 + k 99,500,000 (pairs (L^2 - (L - e)^2) / 2). With k = 1e-3: 195 and 100,500,
    SCV = (50,152.5 / 50,347.5)^2 = 0.99226; tokens alone (450 / 550)^2 = 0.66942."""
    t = _two_requests()
    ideal = 1.0  # clipped up to the requests' own new tokens: no whole-context misses
    assert t.prefill_scv(np.array([ideal]))[0] == pytest.approx((450 / 550) ** 2, rel=1e-3)
    assert t.prefill_scv(np.array([ideal]), 0.0)[0] == pytest.approx((450 / 550) ** 2, rel=1e-3)
    got = t.prefill_scv(np.array([ideal]), 1e-3)[0]
    assert got == pytest.approx((50_152.5 / 50_347.5) ** 2, rel=1e-3)


def test_whole_context_misses_raise_the_variability() -> None:
    """Below the ideal hit ratio some requests miss their whole context (L^2 / 2 pairs):
    the work's SCV grows past the tokens' as the pairs' weight grows."""
    t = _two_requests()
    h = np.array([0.5])
    tokens = t.prefill_scv(h)[0]
    assert t.prefill_scv(h, 1e-4)[0] > tokens
    assert t.prefill_scv(h, 1e-2)[0] > t.prefill_scv(h, 1e-4)[0]


def test_pair_cost_of_qwen3_32b_fp8_on_h100() -> None:
    """One causal pair of Qwen3-32B (64 layers x 64 query heads x 128 dims x 4 FLOPs =
    2.10 MFLOP) at the H100's BF16 attention rate (989 TFLOP/s x attn_eff) against its
    weights' FLOPs per token at the FP8 GEMM rate (1,979 TFLOP/s x the FP8 GEMM
    efficiency)."""
    prof = build_profile(load_model("Qwen/Qwen3-32B"))
    calib = load_calibration()
    hw = hw_vectors(["h100_sxm"], ["fp8"], ["fp8"])
    tier = _two_requests()
    got = float(pair_tokens(prof, hw, calib, tier)[0])
    dense = prof.p_attn + prof.p_recurrent + prof.p_dense + prof.p_shared + prof.p_router
    t_pair = 64 * 64 * 128 * 4 / (989e12 * calib.attn_eff)
    t_token = 2.0 * dense / (1979e12 * calib.gemm_eff_max["fp8"])
    assert got == pytest.approx(t_pair / t_token, rel=0.02)
    # a 900K-token context that misses: its pairs cost tens of times its tokens
    assert 900e3**2 / 2 * got > 20 * 900e3
