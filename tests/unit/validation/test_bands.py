"""Error bands from measured rows: which rows and which predictions they are read from."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.validation.bands import bands_from_rows
from tests.unit.validation.conftest import make_rows


def _predict_half(rows, calib):
    """A stand-in model that predicts half the measured TTFT and the measured TPOT."""
    return rows.ttft_ms / 2.0, rows.tpot_ms.copy(), np.full(len(rows), "", dtype=object)


def _rows():
    """20 agg rows, 20 disagg rows that record their worker counts and 30 that do not."""
    n = 70
    mode = ["agg"] * 20 + ["disagg"] * 50
    workers = np.array([0] * 20 + [2] * 20 + [0] * 30)
    return make_rows(
        n,
        mode=mode,
        backend=["trtllm"] * n,
        p_workers=workers,
        d_workers=workers,
        ttft_ms=np.linspace(100.0, 800.0, n),
        tpot_ms=np.full(n, 10.0),
    )


def test_disagg_band_comes_from_rows_that_record_their_workers() -> None:
    rows = _rows()
    bands = bands_from_rows(rows, None, lambda r: None, _predict_half, "in-sample")
    assert bands is not None
    assert bands.source == "in sample; disagg rows that record their worker counts"
    assert bands.bands["disagg/trtllm"].rows == 20
    assert bands.bands["all"].rows == 40
    # measured / predicted is 2 on every row
    assert bands.bands["disagg/trtllm"].ttft_ratio == pytest.approx((2.0, 2.0, 2.0))
    assert bands.bands["agg"].tpot_ratio == pytest.approx((1.0, 1.0, 1.0))


def test_none_and_one_system_fallback() -> None:
    rows = _rows()
    assert bands_from_rows(rows, None, lambda r: None, _predict_half, "none") is None
    # every row on one system: nothing to hold out, so the rows are predicted in sample
    bands = bands_from_rows(rows, None, lambda r: None, _predict_half, "cv-system")
    assert bands is not None and bands.source.startswith("in sample (one system)")
