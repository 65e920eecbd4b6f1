"""Accuracy of predicted TTFT / TPOT against measured rows: APE summaries and a CSV dump.

A row is *predicted* when its reason is ``''`` and both predictions are finite and > 0;
otherwise it counts against coverage and is listed under ``unpredicted`` with its reason.
APE statistics are over predicted rows that also carry a measurement. Percentiles use
numpy's default linear interpolation (p90 of APEs [0.1, 0.2, 0.5] is 0.44).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codesign.validation.silicon import SiliconRows

DEFAULT_GROUPS = ("model", "system", "mode", "backend")
NONFINITE_REASON = "prediction is not a finite positive number"
WITHIN_FACTOR = 2.0


def ape(pred: Any, meas: Any) -> np.ndarray:
    """Absolute percentage error |pred - meas| / meas, as a fraction (0.1 = 10%)."""
    p = np.asarray(pred, dtype=float)
    m = np.asarray(meas, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(p - m) / m


def check_predictions(
    rows: SiliconRows, pred_ttft_ms: Any, pred_tpot_ms: Any, reasons: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coerce predictions to arrays of length n; reasons become an object array of str.

    A row with reason '' but a non-finite or non-positive prediction gets NONFINITE_REASON.
    """
    n = len(rows)
    ttft = np.asarray(pred_ttft_ms, dtype=float).reshape(-1)
    tpot = np.asarray(pred_tpot_ms, dtype=float).reshape(-1)
    raw = np.asarray(reasons, dtype=object).reshape(-1)
    for name, arr in (("pred_ttft_ms", ttft), ("pred_tpot_ms", tpot), ("reasons", raw)):
        if len(arr) != n:
            raise ValueError(f"{name} has length {len(arr)}, expected {n} rows")
    why = np.where(np.equal(raw, None), "", raw).astype(str).astype(object)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(ttft) & np.isfinite(tpot) & (ttft > 0) & (tpot > 0))
    why[(why == "") & bad] = NONFINITE_REASON
    return ttft, tpot, why


def _quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None


def _fraction(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if len(mask) else None


def _stats(
    ttft: np.ndarray, tpot: np.ndarray, meas_ttft: np.ndarray, meas_tpot: np.ndarray, ok: np.ndarray
) -> dict[str, Any]:
    """Summary over one set of rows (arrays already restricted to it)."""
    n = len(ok)
    predicted = int(ok.sum())
    scored = ok & np.isfinite(meas_ttft) & np.isfinite(meas_tpot)
    e_ttft = ape(ttft[scored], meas_ttft[scored])
    e_tpot = ape(tpot[scored], meas_tpot[scored])
    r_ttft = ttft[scored] / meas_ttft[scored]
    r_tpot = tpot[scored] / meas_tpot[scored]
    lo, hi = 1.0 / WITHIN_FACTOR, WITHIN_FACTOR
    in_ttft = (r_ttft >= lo) & (r_ttft <= hi)
    in_tpot = (r_tpot >= lo) & (r_tpot <= hi)
    return {
        "n": n,
        "predicted": predicted,
        "scored": int(scored.sum()),
        "coverage": predicted / n if n else None,
        "ttft_median_ape": _quantile(e_ttft, 0.5),
        "ttft_p90_ape": _quantile(e_ttft, 0.9),
        "tpot_median_ape": _quantile(e_tpot, 0.5),
        "tpot_p90_ape": _quantile(e_tpot, 0.9),
        "ttft_median_ratio": _quantile(r_ttft, 0.5),
        "tpot_median_ratio": _quantile(r_tpot, 0.5),
        "ttft_within_2x": _fraction(in_ttft),
        "tpot_within_2x": _fraction(in_tpot),
        "within_2x_both": _fraction(in_ttft & in_tpot),
    }


def summarize(
    rows: SiliconRows, ttft: np.ndarray, tpot: np.ndarray, reasons: np.ndarray
) -> dict[str, Any]:
    """Overall stats only (no groups, no unpredicted list); inputs already checked."""
    return _stats(ttft, tpot, rows.ttft_ms, rows.tpot_ms, reasons == "")


def group_stats(
    rows: SiliconRows, ttft: np.ndarray, tpot: np.ndarray, reasons: np.ndarray, field: str
) -> dict[str, dict[str, Any]]:
    """Stats per distinct value of ``field`` (sorted by value); one loop per group."""
    keys = rows.group_keys(field)
    values, inverse = np.unique(keys.astype(str), return_inverse=True)
    ok = reasons == ""
    out: dict[str, dict[str, Any]] = {}
    for i, value in enumerate(values.tolist()):
        m = inverse == i
        out[value] = _stats(ttft[m], tpot[m], rows.ttft_ms[m], rows.tpot_ms[m], ok[m])
    return out


def unpredicted(rows: SiliconRows, reasons: np.ndarray) -> tuple[list[dict[str, str]], dict]:
    """(list of {id, reason} in row order, {reason: count} most frequent first)."""
    idx = np.flatnonzero(reasons != "")
    items = [
        {"id": i, "reason": r}
        for i, r in zip(rows.id[idx].tolist(), reasons[idx].tolist(), strict=True)
    ]
    values, counts = np.unique(reasons[idx].astype(str), return_counts=True)
    order = np.lexsort((values, -counts))
    return items, {str(values[k]): int(counts[k]) for k in order}


def accuracy_report(
    rows: SiliconRows,
    pred_ttft_ms: Any,
    pred_tpot_ms: Any,
    reasons: Any,
    by: Sequence[str] = DEFAULT_GROUPS,
) -> dict[str, Any]:
    """JSON-ready accuracy summary: overall stats, ``by`` groups and unpredicted rows.

    Keys: n, predicted, scored (predicted rows with a measurement), coverage, ttft/tpot
    median and p90 APE, ttft/tpot median pred/meas ratio, ttft/tpot_within_2x,
    within_2x_both; ``by`` = {field: {value: stats}}; ``unpredicted`` = [{id, reason}];
    ``unpredicted_by_reason`` = {reason: count}; ``repeatability``: the configurations
    measured more than once and how far their runs disagree
    (``validation.repeatability``; None without measurements); ``debiased``: the APE left
    once each model x system x mode x engine group's median bias is taken out
    (``validation.repeatability.debiased_errors``). Fractions are in [0, 1];
    None = no rows.
    """
    ttft, tpot, why = check_predictions(rows, pred_ttft_ms, pred_tpot_ms, reasons)
    report = summarize(rows, ttft, tpot, why)
    report["by"] = {field: group_stats(rows, ttft, tpot, why, field) for field in by}
    report["unpredicted"], report["unpredicted_by_reason"] = unpredicted(rows, why)
    from codesign.validation.repeatability import debiased_errors, repeatability

    measured = rows.has_measurements
    report["repeatability"] = repeatability(rows, ttft, tpot, why == "") if measured else None
    report["debiased"] = debiased_errors(rows, ttft, tpot, why == "") if measured else None
    return report


SET_ASIDE_REASON = "row not read (see set_aside)"


def add_set_aside(report: dict[str, Any], set_aside: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Count the file's rows that could not be read (``silicon_csv.read_silicon``) as not
    predicted: ``n`` and ``coverage`` over every row of the file, each such row in
    ``unpredicted`` with its reason and in ``set_aside`` as {line, id, reason}. The
    ``by`` groups hold the rows that were read."""
    report["set_aside"] = list(set_aside)
    if not set_aside:
        return report
    report["n"] += len(set_aside)
    report["coverage"] = report["predicted"] / report["n"]
    report["unpredicted"] = [
        *report["unpredicted"],
        *({"id": r["id"], "reason": r["reason"]} for r in set_aside),
    ]
    counts = dict(report["unpredicted_by_reason"])
    counts[SET_ASIDE_REASON] = counts.get(SET_ASIDE_REASON, 0) + len(set_aside)
    report["unpredicted_by_reason"] = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return report


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


_CSV_HEADER = (
    "id",
    "model",
    "system",
    "backend",
    "mode",
    "isl",
    "osl",
    "concurrency",
    "measured_ttft_ms",
    "predicted_ttft_ms",
    "ttft_ape",
    "measured_tpot_ms",
    "predicted_tpot_ms",
    "tpot_ape",
    "reason",
)


def write_predictions_csv(
    path: str | Path,
    rows: SiliconRows,
    pred_ttft_ms: Any,
    pred_tpot_ms: Any,
    reasons: Any,
    set_aside: Sequence[dict[str, Any]] = (),
) -> Path:
    """One line per row: measured and predicted TTFT/TPOT, APEs, and why unpredicted.

    Predictions and APEs are left empty for unpredicted rows; APEs are empty when the row
    has no measurement. Rows of the file that could not be read (``set_aside``) follow,
    with their id and reason only.
    """
    ttft, tpot, why = check_predictions(rows, pred_ttft_ms, pred_tpot_ms, reasons)
    ok = why == ""
    p_ttft = np.where(ok, ttft, np.nan)
    p_tpot = np.where(ok, tpot, np.nan)
    cols: list[Sequence[Any]] = [
        rows.id,
        rows.model,
        rows.system,
        rows.backend,
        rows.mode,
        rows.isl,
        rows.osl,
        rows.concurrency,
    ]
    for meas, pred in ((rows.ttft_ms, p_ttft), (rows.tpot_ms, p_tpot)):
        cols += [
            [_cell(v) for v in meas.tolist()],
            [_cell(v) for v in pred.tolist()],
            [_cell(v) for v in ape(pred, meas).tolist()],
        ]
    cols.append(why)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(_CSV_HEADER)
        writer.writerows(zip(*(list(c) for c in cols), strict=True))
        blank = [""] * (len(_CSV_HEADER) - 2)
        writer.writerows([r["id"], *blank, r["reason"]] for r in set_aside)
    return out
