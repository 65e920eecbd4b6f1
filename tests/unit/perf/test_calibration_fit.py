"""Calibration fitting on real rows: parameters stay physical and the fit does not worsen."""

from __future__ import annotations

import numpy as np

from codesign.perf.calibration import Calibration
from codesign.perf.fit import PARAMS, fit_calibration, from_vector, residuals, to_vector
from codesign.perf.predict import prepare
from codesign.validation.silicon import SiliconRows


def test_vector_round_trip() -> None:
    c = Calibration()
    assert from_vector(c, to_vector(c)).model_dump() == c.model_dump()


def test_fit_on_a_subset_stays_in_bounds_and_improves(shared_dir) -> None:
    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    rng = np.random.default_rng(0)
    sub = rows.subset(np.sort(rng.choice(len(rows), 300, replace=False)))
    prior = Calibration()
    fitted = fit_calibration(sub, prior, max_nfev=4)
    x = to_vector(fitted)
    for (name, key, lo, hi), v in zip(PARAMS, x, strict=True):
        assert lo <= v <= hi, (name, key, v)
    prep = prepare(sub)
    before = np.sum(np.abs(residuals(prep, sub, prior)))
    after = np.sum(np.abs(residuals(prep, sub, fitted)))
    assert after < before
    assert fitted.version == prior.version + 1 and fitted.fitted_at
    assert fitted.fit_summary["rows"] == 300
