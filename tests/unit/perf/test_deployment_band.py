"""A deployment's error band on an agent workload: the calibration's measured / predicted
percentiles times each latency metric, and what the workload has that the rows had not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codesign.deployment import Deployment
from codesign.perf.calibration import Calibration
from codesign.perf.deployment_band import deployment_error_band, deployment_unmeasured
from codesign.perf.error_bands import compute_error_bands


def _calib() -> Calibration:
    """agg/vllm rows measured at 0.5, 0.6, ... 2.5 x their TTFT prediction and 0.9 ..
    1.3 x their TPOT prediction (21 rows each ratio: p10 / p90 are the 3rd / 19th)."""
    ttft = np.arange(5, 26) / 10.0
    tpot = np.linspace(0.9, 1.3, 21)
    bands = compute_error_bands(
        ["agg"] * 21, ["vllm"] * 21, ttft, np.ones(21), tpot, np.ones(21), "test rows"
    )
    return Calibration().with_error_bands(bands)


def _dep(**kw) -> Deployment:
    doc = {
        "model": "Qwen/Qwen3-32B",
        "engine": "vllm",
        "pools": [{"role": "agg", "system": "h200_sxm", "parallel": {"tp": 2}}],
    }
    return Deployment.model_validate({**doc, **kw})


def test_ranges_are_the_metrics_times_the_p10_and_p90_ratios() -> None:
    metrics = {
        "ttft_p50_s": 0.4,
        "ttft_p90_s": 1.0,
        "ttft_p99_s": math.inf,  # not finite: no range
        "tpot_p50_ms": 20.0,
        "tpot_p90_ms": None,
        "cache_hit_ratio": 0.0,
    }
    b = deployment_error_band(_dep(), metrics, _calib(), fixed_lengths=True)
    assert b is not None and b["band"] == "agg/vllm" and b["rows"] == 21
    # TTFT ratios 0.5 .. 2.5 in steps of 0.1: p10 = 0.7, p90 = 2.3
    assert b["ttft_ratio"] == pytest.approx([0.7, 1.5, 2.3])
    assert b["ranges"]["ttft_p50_s"] == pytest.approx([0.28, 0.92])
    assert b["ranges"]["ttft_p90_s"] == pytest.approx([0.7, 2.3])
    # TPOT ratios 0.9 .. 1.3 in steps of 0.02: p10 = 0.94, p90 = 1.26
    assert b["ranges"]["tpot_p50_ms"] == pytest.approx([18.8, 25.2])
    assert set(b["ranges"]) == {"ttft_p50_s", "ttft_p90_s", "tpot_p50_ms"}
    assert b["unmeasured"] == []


def test_no_band_without_measured_rows_for_the_mode() -> None:
    afd = _dep(
        mode="afd",
        pools=[
            {"role": "attention", "system": "h200_sxm"},
            {"role": "ffn", "system": "h200_sxm"},
        ],
    )
    assert deployment_error_band(afd, {"ttft_p50_s": 1.0}, _calib()) is None
    assert deployment_error_band(_dep(), {"ttft_p50_s": 1.0}, Calibration()) is None


def test_says_what_the_measured_rows_did_not_have() -> None:
    plain = deployment_unmeasured(_dep(), {"cache_hit_ratio": 0.0}, fixed_lengths=True)
    assert plain == []
    dep = _dep(
        mode="disagg",
        spec_decoding={"method": "eagle", "draft_tokens": 3},
        cuda_graphs=False,
        pools=[
            {"role": "prefill", "system": "h200_sxm"},
            {"role": "decode", "system": "b200_sxm", "hardware": {"hbm_bandwidth_tb_s": 10.0}},
        ],
    )
    assert deployment_unmeasured(dep, {"cache_hit_ratio": 0.9}, fixed_lengths=False) == [
        "agent sessions (mixed prompt lengths, tool-call gaps)",
        "prefix-cache hits",
        "speculative decoding on record",
        "mixed systems",
        "hardware overrides",
        "eager (no CUDA graph) steps",
    ]
