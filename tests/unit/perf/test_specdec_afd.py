"""Speculative decoding and attention-FFN disaggregation: worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.perf.calibration import load_calibration
from codesign.perf.estimate import EstimateRequest, estimate
from codesign.serving.afd import afd_step_time, ffn_fanout
from codesign.serving.specdec import expected_tokens_per_step, speculative_time_per_token
from tests.unit.perf.test_breakdown import _afd as afd_point


def test_expected_tokens_per_verify_step() -> None:
    # alpha = 0.5, k = 2: 1 + 0.5 + 0.25 = 1.75 tokens per step
    assert expected_tokens_per_step(2, 0.5) == pytest.approx(1.75)
    assert expected_tokens_per_step(3, 0.0) == pytest.approx(1.0)  # nothing accepted
    assert expected_tokens_per_step(4, 0.999999) == pytest.approx(5.0, rel=1e-4)


def test_speculative_time_per_token_by_hand() -> None:
    # verify 12 ms, drafts 1 ms each, k = 3, alpha = 0.8: E = (1 - 0.8^4) / 0.2 = 2.952
    t = speculative_time_per_token(np.array([0.012]), np.array([0.001]), 3, 0.8)
    assert t[0] == pytest.approx((0.012 + 0.003) / 2.952)


def test_afd_ping_pong_by_hand() -> None:
    # 10 layers, attention 2 ms, FFN 3 ms, transfer 0.5 ms per micro-batch
    serial = afd_step_time(10, np.array([2e-3]), np.array([3e-3]), np.array([0.5e-3]), 1)
    assert serial[0] == pytest.approx(10 * (2 + 3 + 1) * 1e-3)
    # two: the FFN pool is busy from the first hop out (2.5 ms) for 10 x 2 x 3 ms, then the
    # last hop back: 10 x max(2 x 3, 6) + min(6 - 3, 3) = 63 ms (the fill once per step)
    pp = afd_step_time(10, np.array([2e-3]), np.array([3e-3]), np.array([0.5e-3]), 2)
    assert pp[0] == pytest.approx((10 * 2 * 3 + 3) * 1e-3)


def test_speculation_helps_with_good_acceptance(shared_dir) -> None:
    base = EstimateRequest(
        model="deepseek-ai/DeepSeek-R1",
        system="gb200",
        tp=8,
        batch=16,
        isl=4096,
        osl=1024,
        gemm_precision="nvfp4",
    )
    plain = estimate(base)
    spec = estimate(
        base.model_copy(update={"spec_method": "mtp", "draft_tokens": 3, "acceptance": 0.8})
    )
    bad = estimate(
        base.model_copy(update={"spec_method": "mtp", "draft_tokens": 3, "acceptance": 0.05})
    )
    assert spec["tpot_ms"] < plain["tpot_ms"] < bad["tpot_ms"]


def test_afd_estimate_runs_and_counts_both_pools(shared_dir) -> None:
    r = estimate(
        EstimateRequest(
            model="deepseek-ai/DeepSeek-R1",
            system="gb200",
            mode="afd",
            tp=1,
            dp=8,
            ffn_chips=32,
            batch=32,
            isl=4096,
            osl=512,
            gemm_precision="nvfp4",
        )
    )
    assert r["gpus"] == 40 and r["attention_chips"] == 8 and r["ffn_chips"] == 32
    assert r["tpot_ms"] > 0 and r["ttft_ms"] > 0
    with pytest.raises(ValueError, match="needs --draft-tokens"):
        EstimateRequest(model="x", system="gb200", spec_method="mtp")


def test_a_token_reaches_every_ffn_chip_holding_one_of_its_experts() -> None:
    # 8 experts per token over 8 chips: 8 (1 - (7/8)^8) = 5.25 distinct chips on average
    assert ffn_fanout(8, 8, True) == pytest.approx(8 * (1 - (7 / 8) ** 8))
    assert ffn_fanout(8, 8, True) == pytest.approx(5.251, abs=1e-3)
    assert ffn_fanout(1, 8, True) == 1.0  # one FFN chip holds every expert
    assert 7.8 < ffn_fanout(256, 8, True) < 8.0  # nearly always 8 different chips
    assert ffn_fanout(4, 1, True) == pytest.approx(1.0)  # top-1: one chip
    assert ffn_fanout(4, 8, False) == 4.0  # a TP4 dense MLP needs it on all four


def test_afd_activation_transfer_by_hand(shared_dir) -> None:
    # DeepSeek-R1 on one GB200 rack: 8 attention ranks x 64 sequences, 8 FFN chips, two
    # micro-batches: 256 tokens x 7,168 x 2 bytes x 5.25 chips, over 8 NVLink ports at the
    # calibrated collective efficiency, plus the NVLink and collective latency
    calib = load_calibration()
    r = afd_point(2)
    nbytes = 256 * 7168 * 2 * ffn_fanout(8, 8, True)
    hand = nbytes / (900e9 * calib.comm_eff * 8) + 1e-6 + calib.comm_latency_us * 1e-6
    assert r["transfer_ms"] == pytest.approx(hand * 1e3)
