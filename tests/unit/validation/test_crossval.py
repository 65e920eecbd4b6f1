"""Leave-one-group-out cross-validation with a stand-in model whose fit is a mean ratio."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import CodesignError
from codesign.validation.crossval import cross_validate, cross_validate_predictions
from codesign.validation.silicon import SiliconRows


def fit_scale(rows: SiliconRows) -> float:
    """Calibration = mean measured TTFT per input token on the training rows."""
    if len(set(rows.model.tolist())) == 0:
        raise CodesignError("nothing to fit")
    return float(np.mean(rows.ttft_ms / rows.isl))


def predict_scale(rows: SiliconRows, scale: float):
    why = np.where(rows.model == "m/X", "no config for m/X", "").astype(object)
    return scale * rows.isl, np.full(len(rows), 10.0), why


@pytest.fixture
def rows(rows_factory) -> SiliconRows:
    # m/A: 1 ms/token (2 rows); m/B: 2 ms/token (1 row); m/C: 4 ms/token (1 row).
    return rows_factory(
        4,
        model=["m/A", "m/A", "m/B", "m/C"],
        system=["h100_sxm", "b200_sxm", "h100_sxm", "b200_sxm"],
        isl=[100, 200, 100, 100],
        ttft_ms=[100.0, 200.0, 200.0, 400.0],
        tpot_ms=[10.0] * 4,
    )


def test_held_out_predictions_by_hand(rows: SiliconRows) -> None:
    seen: list[tuple[str, int, int]] = []
    ttft, tpot, why, keys = cross_validate_predictions(
        rows, fit_scale, predict_scale, "model", on_fold=lambda v, i, n: seen.append((v, i, n))
    )
    # Hold out m/A: fit on B, C -> (2 + 4) / 2 = 3 ms/token -> 300, 600 ms.
    # Hold out m/B: fit on A, A, C -> (1 + 1 + 4) / 3 = 2 -> 200 ms (exact).
    # Hold out m/C: fit on A, A, B -> (1 + 1 + 2) / 3 = 4/3 -> 133.3 ms.
    assert ttft.tolist() == pytest.approx([300.0, 600.0, 200.0, 400.0 / 3])
    assert tpot.tolist() == [10.0] * 4 and why.tolist() == [""] * 4
    assert keys.tolist() == ["m/A", "m/A", "m/B", "m/C"]
    assert seen == [("m/A", 1, 3), ("m/B", 2, 3), ("m/C", 3, 3)]


def test_cross_validate_report(rows: SiliconRows) -> None:
    rep = cross_validate(rows, fit_scale, predict_scale, "model", groups=("system",))
    # Pooled TTFT APEs: 2.0, 2.0, 0.0, 2/3 -> median (2/3 + 2) / 2 = 4/3.
    assert rep["cv_by"] == "model" and rep["n"] == 4 and rep["coverage"] == 1.0
    assert rep["ttft_median_ape"] == pytest.approx(4 / 3)
    assert rep["tpot_median_ape"] == 0.0
    assert rep["ttft_within_2x"] == pytest.approx(0.25)  # ratios 3, 3, 1, 1/3: only 1
    assert set(rep["folds"]) == {"m/A", "m/B", "m/C"}
    assert rep["folds"]["m/B"]["ttft_median_ape"] == 0.0
    assert rep["folds"]["m/A"]["n"] == 2
    assert rep["by"]["system"]["h100_sxm"]["ttft_median_ape"] == pytest.approx(1.0)  # 2.0, 0.0


def test_unpredicted_and_failed_folds(rows_factory) -> None:
    rows = rows_factory(
        3, model=["m/A", "m/X", "m/F"], isl=[100] * 3, ttft_ms=[100.0] * 3, tpot_ms=[10.0] * 3
    )

    def fit(train: SiliconRows) -> float:
        if "m/F" not in train.model.tolist():
            raise CodesignError("needs m/F")
        return 1.0

    rep = cross_validate(rows, fit, predict_scale, "model")
    assert rep["predicted"] == 1 and rep["coverage"] == pytest.approx(1 / 3)
    assert rep["unpredicted_by_reason"] == {"fit failed: needs m/F": 1, "no config for m/X": 1}


def test_needs_two_groups(rows_factory) -> None:
    with pytest.raises(CodesignError, match="at least 2 distinct values"):
        cross_validate(rows_factory(3), fit_scale, predict_scale, "model")
