"""Error bands for a calibration from measured rows (``codesign calibrate --bands``).

``cv-system``: each system's rows predicted by a calibration refitted without them (what a
system the calibration never saw should expect; one refit per system). ``in-sample``: the
rows predicted by the calibration itself (narrower: it was fitted on them).

Disaggregated rows that leave their worker counts empty are fitted and predicted with an
assumed deployment (``perf.unrecorded``); an estimate names its own workers, so its band
comes from the disaggregated rows that record theirs.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np

from codesign.perf.error_bands import ErrorBands, compute_error_bands
from codesign.validation.crossval import FitFn, FoldCallback, PredictFn, cross_validate_predictions
from codesign.validation.silicon import SiliconRows

BandMethod = Literal["cv-system", "in-sample", "none"]
BAND_METHODS: tuple[str, ...] = get_args(BandMethod)
SOURCES = {
    "cv-system": "leave-one-system-out",
    "in-sample": "in sample",
}


def bands_from_rows(
    rows: SiliconRows,
    calibration: Any,
    fit_fn: FitFn,
    predict_fn: PredictFn,
    method: BandMethod,
    on_fold: FoldCallback | None = None,
) -> ErrorBands | None:
    """Bands of ``calibration`` over ``rows`` by ``method``; None for ``none`` or when too
    few rows are predicted to read percentiles from. ``cv-system`` on rows of a single
    system falls back to in-sample (there is no other system to hold out)."""
    if method == "none":
        return None
    systems = np.unique(rows.system.astype(str))
    if method == "cv-system" and len(systems) >= 2:
        ttft, tpot, _, _ = cross_validate_predictions(rows, fit_fn, predict_fn, "system", on_fold)
        source = f"{SOURCES['cv-system']} over {len(systems)} systems"
    else:
        ttft, tpot, _ = predict_fn(rows, calibration)
        source = SOURCES["in-sample"] + (" (one system)" if method == "cv-system" else "")
    # an estimate names its prefill and decode workers: its band comes from the disagg rows
    # that record theirs, not from those whose pools the prediction had to assume
    known = ~rows.disagg_workers_unrecorded
    if (~known).any():
        source += "; disagg rows that record their worker counts"
    k = np.flatnonzero(known)
    try:
        return compute_error_bands(
            rows.mode[k],
            rows.backend[k],
            rows.ttft_ms[k],
            np.asarray(ttft)[k],
            rows.tpot_ms[k],
            np.asarray(tpot)[k],
            source,
        )
    except ValueError:
        return None
