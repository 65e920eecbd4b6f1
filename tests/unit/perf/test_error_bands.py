"""Error bands: percentiles of measured / predicted per mode and engine, by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.error_bands import band_fields, compute_error_bands
from codesign.perf.estimate import EstimateRequest, estimate


def _bands(n_agg_trt: int = 21, n_agg_vllm: int = 5, n_disagg: int = 3):
    """agg/trtllm rows measured at 0.1, 0.2, ... 2.1 x their prediction (100 ms TTFT,
    10 ms TPOT predicted); TPOT measured at 2x everywhere; a few vLLM and disagg rows at
    exactly 1x."""
    ratios = np.arange(1, n_agg_trt + 1) / 10.0
    n = n_agg_trt + n_agg_vllm + n_disagg
    modes = ["agg"] * (n_agg_trt + n_agg_vllm) + ["disagg"] * n_disagg
    engines = ["trtllm"] * n_agg_trt + ["vllm"] * n_agg_vllm + ["trtllm"] * n_disagg
    meas_ttft = np.concatenate([100.0 * ratios, np.full(n_agg_vllm + n_disagg, 100.0)])
    return compute_error_bands(
        modes,
        engines,
        meas_ttft,
        np.full(n, 100.0),
        np.full(n, 20.0),
        np.full(n, 10.0),
        "test rows",
    )


def test_percentiles_by_hand() -> None:
    b = _bands()
    trt = b.bands["agg/trtllm"]
    # 21 ratios 0.1 .. 2.1: linear interpolation puts p10 at the 3rd (index 2), p50 at the
    # 11th, p90 at the 19th
    assert trt.rows == 21
    assert trt.ttft_ratio == pytest.approx((0.3, 1.1, 1.9))
    assert trt.tpot_ratio == pytest.approx((2.0, 2.0, 2.0))


def test_small_groups_borrow_the_wider_band() -> None:
    b = _bands()
    # 5 vLLM rows are too few for their own band: they read agg's (26 rows)
    assert "agg/vllm" not in b.bands
    key, band = b.lookup("agg", "vllm")  # type: ignore[misc]
    assert key == "agg" and band.rows == 26
    # 3 disagg rows: no band of the mode, so the one over all rows (29)
    key, band = b.lookup("disagg", "trtllm")  # type: ignore[misc]
    assert key == "all" and band.rows == 29
    # a mode without measured rows has no band at all
    assert b.lookup("afd", "trtllm") is None
    assert band_fields(b, "afd", "trtllm", 100.0, 10.0) == {}


def test_band_fields_scale_the_prediction() -> None:
    f = band_fields(_bands(), "agg", "trtllm", 250.0, 4.0)
    assert f["ttft_ms_p10"] == pytest.approx(75.0)  # 250 x 0.3
    assert f["ttft_ms_p90"] == pytest.approx(475.0)  # 250 x 1.9
    assert f["tpot_ms_p10"] == f["tpot_ms_p90"] == pytest.approx(8.0)
    assert f["error_band"] == "agg/trtllm, test rows, 21 measured rows"
    assert band_fields(None, "agg", "trtllm", 250.0, 4.0) == {}


def test_unpredicted_rows_are_left_out_and_too_few_rows_refused() -> None:
    n = 25
    pred = np.full(n, 100.0)
    pred[:3] = np.nan  # not predicted
    b = compute_error_bands(
        ["agg"] * n, ["sglang"] * n, np.full(n, 50.0), pred, np.ones(n), np.ones(n), "x"
    )
    assert b.bands["all"].rows == 22 and b.bands["agg/sglang"].ttft_ratio[1] == 0.5
    with pytest.raises(ValueError, match="at least 20"):
        compute_error_bands(["agg"] * 5, ["vllm"] * 5, *([np.ones(5)] * 4), "x")


def test_bands_round_trip_through_the_calibration_file(tmp_path) -> None:
    cal = Calibration().with_error_bands(_bands())
    path = cal.save(tmp_path / "cal.json")
    back = load_calibration(path)
    assert back.error_bands == cal.error_bands
    assert json.loads(path.read_text())["error_bands"]["source"] == "test rows"


def test_packaged_calibration_carries_held_out_bands() -> None:
    """The shipped bands come from leave-one-system-out predictions of the dev rows, and
    the estimate's range brackets its own prediction."""
    bands = load_calibration().error_bands
    assert bands is not None and bands.source.startswith("leave-one-system-out")
    assert {"agg/trtllm", "agg/vllm", "agg/sglang", "disagg/trtllm"} <= set(bands.bands)
    for b in bands.bands.values():
        assert b.ttft_ratio[0] < b.ttft_ratio[1] < b.ttft_ratio[2]
        assert b.tpot_ratio[0] < 1.0 < b.tpot_ratio[2]
    req = EstimateRequest(
        model="Qwen/Qwen3-32B", system="h100_sxm", engine="vllm", tp=2, batch=16, isl=2048
    )
    out = estimate(req)
    assert out["ttft_ms_p10"] < out["ttft_ms"] < out["ttft_ms_p90"]
    assert out["tpot_ms_p10"] < out["tpot_ms"] < out["tpot_ms_p90"]
    assert out["error_band"].startswith("agg/vllm, leave-one-system-out")


def test_band_says_what_the_measured_rows_did_not_have() -> None:
    base = dict(model="Qwen/Qwen3-32B", system="h100_sxm", engine="vllm", tp=2, batch=16)
    plain = estimate(EstimateRequest(**base))
    assert "had no" not in plain["error_band"]
    cached = estimate(EstimateRequest(**base, prefix_hit=0.9, arrival_rate=2.0))
    assert cached["error_band"].endswith(
        "; the measured rows had no prefix-cache hits, open-loop arrivals"
    )
    # attention-FFN disaggregation has no measured rows: no band at all
    afd = estimate(EstimateRequest(**{**base, "engine": "trtllm"}, mode="afd"))
    assert "error_band" not in afd and "ttft_ms_p10" not in afd
