"""How well measured rows agree with themselves: repeated configurations.

Some measured files hold the same deployment more than once: the same model, system,
engine and version, precision, layout, clients and lengths, measured on different days
or images. Where those repeats disagree, the difference comes from something the file
does not record (a speculative-decoding switch, a scheduler setting, worker counts of a
disaggregated run, the benchmark's warm-up), and no prediction from the recorded columns
can be right for both: it predicts them alike. This module measures how far apart the
repeats are, so an accuracy figure can be read against the rows' own disagreement.

For every configuration measured at least twice (all recorded fields equal, the
measurements and the row id aside) it reports how many disagree by more than a tolerance
(max / min measured TTFT or TPOT), how far apart they are, and, on the rows of the
disagreeing configurations, two errors side by side:

- ``repeat_*_median_ape``: the APE of predicting each row by the geometric mean of its
  configuration's measurements, what a predictor that knew each deployment's typical
  figure, and nothing the file leaves out, would score on those rows (for two rows
  measured a and b: |sqrt(b / a) - 1| and |sqrt(a / b) - 1|);
- ``model_*_median_ape``: the prediction's APE on the same rows.

``debiased_errors`` asks the other question, over all rows: how much of the error is a
bias per model, system, mode and engine (which a physics or calibration change could
remove) and how much is scatter within those groups (load-dependent physics, settings
the file does not record, repeats that disagree).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from codesign.validation.report import DEFAULT_GROUPS, _quantile
from codesign.validation.silicon import SiliconRows

# measured spread at which two runs of one configuration count as disagreeing
DEFAULT_TOLERANCE = 0.02
_NOT_CONFIGURATION = ("id", "ttft_ms", "tpot_ms")


def configuration_ids(rows: SiliconRows) -> np.ndarray:
    """Per-row integer id of its recorded configuration (equal ids: equal fields)."""
    names = [f.name for f in fields(rows) if f.name not in _NOT_CONFIGURATION]
    return np.unique(rows.group_keys(names).astype(str), return_inverse=True)[1]


def _group_log_mean(log_values: np.ndarray, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.bincount(ids, weights=log_values, minlength=len(counts)) / counts


def _spread(values: np.ndarray, ids: np.ndarray, groups: int) -> np.ndarray:
    hi = np.full(groups, -np.inf)
    lo = np.full(groups, np.inf)
    np.maximum.at(hi, ids, values)
    np.minimum.at(lo, ids, values)
    return hi / lo


def repeatability(
    rows: SiliconRows,
    pred_ttft_ms: np.ndarray,
    pred_tpot_ms: np.ndarray,
    predicted: np.ndarray,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Repeats in the measured rows and how far they disagree (module docstring).

    ``predicted``: boolean mask of rows with a finite prediction. Keys:
    configurations_repeated / rows_repeated (measured twice or more),
    configurations_disagreeing / rows_disagreeing (max / min measured TTFT or TPOT over
    1 + ``tolerance``), ttft/tpot_spread_median and _p90 (max / min over the disagreeing
    configurations), repeat_ttft/tpot_median_ape and model_ttft/tpot_median_ape over the
    disagreeing rows that are predicted, tolerance. Medians are None without such rows.
    """
    ids = configuration_ids(rows)
    counts = np.bincount(ids).astype(float)
    groups = len(counts)
    meas_t, meas_p = np.asarray(rows.ttft_ms, float), np.asarray(rows.tpot_ms, float)
    spread_t, spread_p = _spread(meas_t, ids, groups), _spread(meas_p, ids, groups)
    repeated = counts >= 2
    disagree = repeated & ((spread_t > 1 + tolerance) | (spread_p > 1 + tolerance))
    in_disagree = disagree[ids]
    scored = in_disagree & np.asarray(predicted, bool)
    gm_t = np.exp(_group_log_mean(np.log(meas_t), ids, counts))[ids]
    gm_p = np.exp(_group_log_mean(np.log(meas_p), ids, counts))[ids]
    pt, pp = np.asarray(pred_ttft_ms, float), np.asarray(pred_tpot_ms, float)
    return {
        "tolerance": tolerance,
        "configurations_repeated": int(repeated.sum()),
        "rows_repeated": int(repeated[ids].sum()),
        "configurations_disagreeing": int(disagree.sum()),
        "rows_disagreeing": int(in_disagree.sum()),
        "ttft_spread_median": _quantile(spread_t[disagree], 0.5),
        "ttft_spread_p90": _quantile(spread_t[disagree], 0.9),
        "tpot_spread_median": _quantile(spread_p[disagree], 0.5),
        "tpot_spread_p90": _quantile(spread_p[disagree], 0.9),
        "repeat_ttft_median_ape": _quantile(np.abs(gm_t / meas_t - 1)[scored], 0.5),
        "repeat_tpot_median_ape": _quantile(np.abs(gm_p / meas_p - 1)[scored], 0.5),
        "model_ttft_median_ape": _quantile(np.abs(pt / meas_t - 1)[scored], 0.5),
        "model_tpot_median_ape": _quantile(np.abs(pp / meas_p - 1)[scored], 0.5),
    }


def debiased_errors(
    rows: SiliconRows,
    pred_ttft_ms: np.ndarray,
    pred_tpot_ms: np.ndarray,
    predicted: np.ndarray,
    group_fields: tuple[str, ...] = DEFAULT_GROUPS,
) -> dict[str, Any]:
    """The median APE left once every prediction is rescaled by its group's median
    measured / predicted ratio (a group: rows equal in ``group_fields``). Close to the
    model's own APE, the error is scatter within the groups; far below it, a bias per
    group. Keys: fields, groups, ttft_median_ape, tpot_median_ape (None without rows)."""
    ok = np.asarray(predicted, bool) & (rows.ttft_ms > 0) & (rows.tpot_ms > 0)
    ids = np.unique(rows.group_keys(list(group_fields))[ok].astype(str), return_inverse=True)[1]
    out: dict[str, Any] = {"fields": list(group_fields), "groups": int(ids.max(initial=-1) + 1)}
    for name, meas, pred in (
        ("ttft", rows.ttft_ms, pred_ttft_ms),
        ("tpot", rows.tpot_ms, pred_tpot_ms),
    ):
        log_ratio = np.log(np.asarray(meas, float)[ok] / np.asarray(pred, float)[ok])
        bias = np.array([np.median(log_ratio[ids == g]) for g in range(out["groups"])])
        # APE of the rescaled prediction: |pred x measured/predicted bias / measured - 1|
        left = np.abs(np.exp(bias[ids] - log_ratio) - 1.0) if ids.size else log_ratio
        out[f"{name}_median_ape"] = _quantile(left, 0.5)
    return out
