"""Accuracy regression guard on the dev rows: fails if errors grow beyond the recorded
figures (README, `codesign validate`) by a margin. The figures are medians over 3,188
measured rows; see the README for the full report and cross-validation."""

from __future__ import annotations

import numpy as np

from codesign.perf.predict import predict_rows
from codesign.validation.report import accuracy_report
from codesign.validation.silicon import SiliconRows

# recorded with the packaged calibration (codesign validate --json), plus a margin
RECORDED = {"ttft_median_ape": 0.299, "tpot_median_ape": 0.132, "tpot_within_2x": 0.970}
MARGIN = 0.03


def test_dev_rows_accuracy_does_not_regress(shared_dir) -> None:
    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    ttft, tpot, reasons = predict_rows(rows)
    rep = accuracy_report(rows, ttft, tpot, reasons)
    assert rep["coverage"] == 1.0
    assert rep["ttft_median_ape"] <= RECORDED["ttft_median_ape"] + MARGIN
    assert rep["tpot_median_ape"] <= RECORDED["tpot_median_ape"] + MARGIN
    assert rep["tpot_within_2x"] >= RECORDED["tpot_within_2x"] - MARGIN
    assert np.all(np.isfinite(ttft)) and np.all(ttft > 0)
