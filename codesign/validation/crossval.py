"""Leave-one-group-out cross-validation: how well calibration generalises to a new model
or a new system.

For each distinct value of ``rows.<by>`` the calibration is fitted on every other row and
the held-out rows are predicted with it; the pooled held-out predictions are summarised
exactly like :func:`codesign.validation.report.accuracy_report`, and each fold is also
reported on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from codesign.errors import CodesignError
from codesign.validation.report import (
    DEFAULT_GROUPS,
    accuracy_report,
    check_predictions,
    summarize,
)
from codesign.validation.silicon import SiliconRows

FitFn = Callable[[SiliconRows], Any]
PredictFn = Callable[[SiliconRows, Any], tuple[Any, Any, Any]]


class FoldCallback(Protocol):
    def __call__(self, value: str, done: int, total: int) -> None: ...


def cross_validate_predictions(
    rows: SiliconRows,
    fit_fn: FitFn,
    predict_fn: PredictFn,
    by: str,
    on_fold: FoldCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Held-out (ttft_ms, tpot_ms, reasons, fold key) for every row, in row order.

    A fold whose fit raises CodesignError leaves its rows unpredicted with reason
    ``"fit failed: <message>"``. ``on_fold(value, done, total)`` is called after each fold.
    """
    keys = rows.group_keys(by).astype(str)
    values = np.unique(keys)
    if len(values) < 2:
        raise CodesignError(
            f"cross-validation by {by} needs at least 2 distinct values, got {len(values)}"
        )
    n = len(rows)
    ttft = np.full(n, np.nan)
    tpot = np.full(n, np.nan)
    reasons = np.full(n, "", dtype=object)
    for done, value in enumerate(values.tolist(), start=1):
        held = keys == value
        held_rows = rows.subset(held)
        try:
            calib = fit_fn(rows.subset(~held))
        except CodesignError as exc:
            reasons[held] = f"fit failed: {exc}"
        else:
            t, d, why = check_predictions(held_rows, *predict_fn(held_rows, calib))
            ttft[held], tpot[held], reasons[held] = t, d, why
        if on_fold is not None:
            on_fold(value, done, len(values))
    return ttft, tpot, reasons, keys.astype(object)


def cross_validate(
    rows: SiliconRows,
    fit_fn: FitFn,
    predict_fn: PredictFn,
    by: str,
    groups: Sequence[str] = DEFAULT_GROUPS,
    on_fold: FoldCallback | None = None,
) -> dict[str, Any]:
    """Leave-one-``by``-out report: accuracy_report over the pooled held-out predictions,
    plus ``cv_by`` (the field) and ``folds`` = {held-out value: stats of that fold}.

    ``fit_fn(train_rows) -> calibration``; ``predict_fn(rows, calibration) -> (ttft_ms,
    tpot_ms, reasons)`` with reasons '' for predicted rows.
    """
    ttft, tpot, reasons, keys = cross_validate_predictions(rows, fit_fn, predict_fn, by, on_fold)
    report = accuracy_report(rows, ttft, tpot, reasons, by=groups)
    folds: dict[str, dict[str, Any]] = {}
    for value in np.unique(keys.astype(str)).tolist():
        m = keys == value
        folds[value] = summarize(rows.subset(m), ttft[m], tpot[m], reasons[m])
    report["cv_by"] = by
    report["folds"] = folds
    return report
