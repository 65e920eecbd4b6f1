"""accuracy_report: APE statistics worked out by hand, coverage, groups, the predictions CSV."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from codesign.validation.report import (
    NONFINITE_REASON,
    accuracy_report,
    ape,
    write_predictions_csv,
)

NaN = math.nan


@pytest.fixture
def three(rows_factory):
    """Measured TTFT 100 ms and TPOT 10 ms everywhere, a 4th row that cannot be predicted.

    TTFT predictions 110, 80, 150 -> APE 0.1, 0.2, 0.5; ratios 1.1, 0.8, 1.5 (all within 2x).
    TPOT predictions 10, 25, 4    -> APE 0.0, 1.5, 0.6; ratios 1.0, 2.5, 0.4 (only row 0).
    """
    rows = rows_factory(
        4,
        system=["h100_sxm", "h100_sxm", "b200_sxm", "b200_sxm"],
        model=["m/A", "m/A", "m/A", "m/B"],
        ttft_ms=[100.0] * 4,
        tpot_ms=[10.0] * 4,
    )
    pred_ttft = np.array([110.0, 80.0, 150.0, NaN])
    pred_tpot = np.array([10.0, 25.0, 4.0, NaN])
    reasons = np.array(["", "", "", "unsupported model m/B"], dtype=object)
    return rows, pred_ttft, pred_tpot, reasons


def test_ape() -> None:
    assert ape(110.0, 100.0) == pytest.approx(0.1)
    assert ape([50.0, 300.0], [100.0, 100.0]).tolist() == pytest.approx([0.5, 2.0])


def test_overall_stats_by_hand(three) -> None:
    rep = accuracy_report(*three)
    assert (rep["n"], rep["predicted"], rep["scored"]) == (4, 3, 3)
    assert rep["coverage"] == pytest.approx(0.75)
    # Medians: middle of the sorted three. p90 (linear): position 0.9 * 2 = 1.8 between the
    # 2nd and 3rd sorted values -> 0.2 + 0.8 * (0.5 - 0.2) = 0.44; 0.6 + 0.8 * 0.9 = 1.32.
    assert rep["ttft_median_ape"] == pytest.approx(0.2)
    assert rep["ttft_p90_ape"] == pytest.approx(0.44)
    assert rep["tpot_median_ape"] == pytest.approx(0.6)
    assert rep["tpot_p90_ape"] == pytest.approx(1.32)
    assert rep["ttft_median_ratio"] == pytest.approx(1.1)
    assert rep["tpot_median_ratio"] == pytest.approx(1.0)
    assert rep["ttft_within_2x"] == pytest.approx(1.0)
    assert rep["tpot_within_2x"] == pytest.approx(1 / 3)
    assert rep["within_2x_both"] == pytest.approx(1 / 3)
    assert rep["unpredicted"] == [{"id": "r3", "reason": "unsupported model m/B"}]
    assert rep["unpredicted_by_reason"] == {"unsupported model m/B": 1}
    json.dumps(rep)  # plain Python types only (no numpy scalars)


def test_groups_by_hand(three) -> None:
    rep = accuracy_report(*three, by=("system", "model"))
    assert set(rep["by"]) == {"system", "model"}
    h100 = rep["by"]["system"]["h100_sxm"]  # rows 0, 1: TTFT APE 0.1, 0.2
    assert (h100["n"], h100["predicted"], h100["coverage"]) == (2, 2, 1.0)
    assert h100["ttft_median_ape"] == pytest.approx(0.15)
    assert h100["tpot_median_ape"] == pytest.approx(0.75)  # 0.0 and 1.5
    b200 = rep["by"]["system"]["b200_sxm"]  # row 2 predicted, row 3 not
    assert (b200["n"], b200["predicted"], b200["coverage"]) == (2, 1, 0.5)
    assert b200["ttft_p90_ape"] == pytest.approx(0.5)
    model_b = rep["by"]["model"]["m/B"]
    assert (model_b["n"], model_b["predicted"], model_b["ttft_median_ape"]) == (1, 0, None)
    assert model_b["within_2x_both"] is None


def test_nonfinite_prediction_counts_as_unpredicted(three) -> None:
    rows, t, d, why = three
    t = t.copy()
    t[0] = np.inf
    rep = accuracy_report(rows, t, d, why)
    assert rep["predicted"] == 2
    assert {"id": "r0", "reason": NONFINITE_REASON} in rep["unpredicted"]
    # Remaining TTFT APEs 0.2 and 0.5.
    assert rep["ttft_median_ape"] == pytest.approx(0.35)


def test_reason_counts_most_frequent_first(rows_factory) -> None:
    rows = rows_factory(5, ttft_ms=[1.0] * 5, tpot_ms=[1.0] * 5)
    why = np.array(["b", "a", "b", "", "c"], dtype=object)
    rep = accuracy_report(rows, np.ones(5), np.ones(5), why, by=())
    assert list(rep["unpredicted_by_reason"].items()) == [("b", 2), ("a", 1), ("c", 1)]
    assert rep["by"] == {}
    assert rep["ttft_median_ape"] == 0.0 and rep["within_2x_both"] == 1.0


def test_prediction_only_rows(rows_factory) -> None:
    rows = rows_factory(2)  # no measurements
    rep = accuracy_report(rows, [5.0, 6.0], [1.0, 1.0], ["", ""])
    assert (rep["predicted"], rep["scored"], rep["coverage"]) == (2, 0, 1.0)
    assert rep["ttft_median_ape"] is None and rep["ttft_within_2x"] is None


def test_shape_mismatch_is_an_error(three) -> None:
    rows, t, d, why = three
    with pytest.raises(ValueError, match="pred_tpot_ms has length 3, expected 4"):
        accuracy_report(rows, t, d[:3], why)
    with pytest.raises(ValueError, match="reasons has length 2"):
        accuracy_report(rows, t, d, why[:2])


def test_write_predictions_csv(three, tmp_path: Path) -> None:
    rows, t, d, why = three
    path = write_predictions_csv(tmp_path / "out" / "pred.csv", rows, t, d, why)
    with path.open() as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == 4
    first = lines[0]
    assert first["id"] == "r0" and first["system"] == "h100_sxm" and first["mode"] == "agg"
    assert float(first["measured_ttft_ms"]) == 100.0
    assert float(first["predicted_ttft_ms"]) == 110.0
    assert float(first["ttft_ape"]) == pytest.approx(0.1)
    assert float(lines[1]["tpot_ape"]) == pytest.approx(1.5)
    assert first["reason"] == ""
    last = lines[3]
    assert last["predicted_ttft_ms"] == "" and last["ttft_ape"] == ""
    assert last["measured_tpot_ms"] == "10.0" and last["reason"] == "unsupported model m/B"
