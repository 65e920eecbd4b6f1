"""Calibration fitting on real rows: parameters stay physical and the fit does not worsen."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.fit import PARAMS, fit_calibration, from_vector, residuals, to_vector
from codesign.perf.predict import evaluate, prepare
from codesign.validation.silicon import SiliconRows


def test_vector_round_trip() -> None:
    c = Calibration()
    assert from_vector(c, to_vector(c)).model_dump() == c.model_dump()


def test_fit_on_a_subset_stays_in_bounds_and_improves(shared_dir) -> None:
    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    rng = np.random.default_rng(0)
    sub = rows.subset(np.sort(rng.choice(len(rows), 300, replace=False)))
    # the prior carries bands of its own; they described it, not the refit
    prior = Calibration().with_error_bands(load_calibration().error_bands)  # type: ignore[arg-type]
    fitted = fit_calibration(sub, prior, max_nfev=4)
    assert prior.error_bands is not None and fitted.error_bands is None
    x = to_vector(fitted)
    for (name, key, lo, hi), v in zip(PARAMS, x, strict=True):
        assert lo <= v <= hi, (name, key, v)
    prep = prepare(sub)
    before = np.sum(np.abs(residuals(prep, sub, prior)))
    after = np.sum(np.abs(residuals(prep, sub, fitted)))
    assert after < before
    assert fitted.version == prior.version + 1 and fitted.fitted_at
    assert fitted.fit_summary["rows"] == 300


def test_sync_factor_is_per_engine_and_old_files_load(shared_dir) -> None:
    """A version-2 file's single sync factor applies to every engine; a per-engine one moves
    only that engine's closed-loop TTFT (the cohort wait grows with it)."""
    old = Calibration.model_validate({"sync_factor": 0.25})
    assert old.sync_factor == {"trtllm": 0.25, "vllm": 0.25, "sglang": 0.25}
    with pytest.raises(ValidationError, match="between 0 and 1"):
        Calibration.model_validate({"sync_factor": {"trtllm": -1.0}})
    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    busy = rows.subset((rows.mode == "agg") & (rows.concurrency >= 32))
    prep = prepare(busy)
    base = Calibration()
    louder = base.model_copy(update={"sync_factor": {**base.sync_factor, "sglang": 0.9}})
    t0, _ = evaluate(prep, base)
    t1, _ = evaluate(prep, louder)
    sglang = busy.backend == "sglang"
    assert sglang.any() and (~sglang).any()
    # a row whose KV slots bind is set by Little's law instead, so it may not move
    assert np.all(t1[sglang] >= t0[sglang] * (1 - 1e-9))
    assert np.mean(t1[sglang] > t0[sglang] * 1.01) > 0.5
    np.testing.assert_array_equal(t1[~sglang], t0[~sglang])
