"""What a request's prefill takes from the decode steps: in a mixed step (TRT-LLM, vLLM)
the chunk's marginal cost, because the weights stream once for the decodes and the chunk
together; SGLang runs prefills as batches of their own and pays the whole step."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models import load_model
from codesign.perf.calibration import Calibration
from codesign.perf.engine import byte_sizes, efficiency, prefill_work_s
from codesign.perf.hardware import hw_vectors
from codesign.perf.predict import make_layout, make_load
from codesign.perf.profile import build_profile
from codesign.perf.step import step_time


def test_by_hand() -> None:
    prefill = {"total": np.array([10.0, 10.0, 10.0]), "fixed": np.array([1.0, 1.0, 1.0])}
    own = np.array([6.0, 6.0, 6.0])  # a decode step carrying one chunk
    dec = np.array([5.0, 5.0, 5.0])  # the same step without it
    chunks = np.array([2.0, 20.0, 2.0])
    work = prefill_work_s(["trtllm", "vllm", "sglang"], own, dec, chunks, prefill)
    # 2 chunks x 1 added; 20 chunks x 1 = 20 capped at the prefill alone (10 - 1 fixed);
    # SGLang pays the prefill alone
    assert work == pytest.approx([2.0, 9.0, 9.0])


def _steps(isl: int) -> tuple[float, float, float]:
    """(decode step with one chunk, decode step alone, the prefill alone less its fixed
    part) for Qwen3-235B FP8 on four H100s (TP4, EP4) with 64 sequences decoding, with
    the calibration's priors (the physics, not a fit)."""
    prof = build_profile(load_model("Qwen/Qwen3-235B-A22B-FP8"))
    hw = hw_vectors(["h100_sxm"], ["fp8_block"], ["fp8_block"])
    nb = byte_sizes(["fp8_block"], ["fp8_block"], ["fp8"])
    eff = efficiency(Calibration(), hw, ["trtllm"])  # the physics priors, not a fit
    lay = make_layout([4], [1], [1], [4], [1], True)

    def t(load) -> dict:
        return step_time(prof, hw, lay, load, nb, eff)

    own = t(make_load(64, 1024, isl, 0, 1))["total"][0]
    dec = t(make_load(64, 1024, 0, 0, 0))["total"][0]
    alone = t(make_load(0, 0, isl, 0, 1))
    return own, dec, (alone["total"] - alone["fixed"])[0]


def test_a_short_prompt_rides_the_decode_step_almost_free() -> None:
    # 128 prompt tokens next to 64 decoding sequences: the step already streams every
    # expert's weights, so the chunk adds a fraction of what it costs on its own
    own, dec, alone = _steps(128)
    assert 0 < own - dec < 0.3 * alone


def test_a_long_prompt_costs_about_its_own_step() -> None:
    # 8K tokens are compute-bound: riding a decode step saves only the weight stream
    own, dec, alone = _steps(8192)
    assert 0.7 * alone < own - dec <= alone
