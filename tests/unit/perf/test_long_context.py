"""Long prompts against a published measurement, and calibration files from before the
attention-efficiency ramp."""

from __future__ import annotations

import json

import pytest

from codesign.perf.calibration import DEFAULT_CALIBRATION_PATH, Calibration
from codesign.perf.estimate import EstimateRequest, estimate


def _ttft_s(isl: int, calib: Calibration | None = None) -> float:
    req = EstimateRequest(
        model="meta-llama/Meta-Llama-3.1-405B", system="h200_sxm", tp=8, batch=1,
        isl=isl, osl=2, gemm_precision="fp8",
    )  # fmt: skip
    return estimate(req, calib)["ttft_ms"] / 1e3


def test_long_prefill_grows_like_the_published_measurement() -> None:
    # NVIDIA (GH200 NVL32, TRT-LLM, Llama-3.1-405B): TTFT 1.6 s at 32,768 input tokens and
    # 7.5 s at 122,880, 4.7x for 3.75x the tokens: the linear work grows 3.75x and the
    # attention 14x, so attention is a small share at 32K, as it is when it runs near
    # kernel speed. Hopper either way; 8 x H200 here (GH200 NVL32 is not in the catalog)
    ratio = _ttft_s(122_880) / _ttft_s(32_768)
    assert 4.7 * 0.85 <= ratio <= 4.7 * 1.2
    # the constant efficiency fitted before (0.20, version 9) grew it 7.4x
    legacy = Calibration.model_validate(
        {**json.loads(DEFAULT_CALIBRATION_PATH.read_text()), "attn_eff": 0.202, "version": 9}
        | {"attn_half_tokens": 0.0}
    )
    assert _ttft_s(122_880, legacy) / _ttft_s(32_768, legacy) > 6.5


def test_files_before_version_10_keep_a_constant_attention_efficiency() -> None:
    data = json.loads(DEFAULT_CALIBRATION_PATH.read_text())
    data.pop("attn_half_tokens")
    old = Calibration.model_validate({**data, "version": 9, "attn_eff": 0.2})
    assert old.attn_half_tokens == 0.0 and old.attn_eff == 0.2
    assert Calibration.model_validate({**data, "version": 10}).attn_half_tokens == 2048.0
    assert Calibration().attn_half_tokens == 2048.0  # the uncalibrated prior
    with pytest.raises(ValueError, match="attn_half_tokens"):
        Calibration.model_validate({**data, "attn_half_tokens": -1.0})
