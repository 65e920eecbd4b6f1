"""One vectorised evaluation of a batch of points (module-level so that an executor can
ship it as a task: the context is put into Ray's object store once per job)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.evaluate import evaluate_arrays
from search.space import Points


@dataclass
class EvalContext:
    decoder: Any  # search.decode.Decoder
    load: Any  # AgentLoad
    sessions: float
    calib: Any
    obj: Any  # search.pareto.Objectives


def evaluate_points(
    ctx: EvalContext, pts: Points
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Metrics, normalised objectives and the ok mask of a batch of points."""
    cand, invalid, sub = ctx.decoder.candidates(pts)
    res = evaluate_arrays(cand, ctx.load, ctx.sessions, ctx.calib, sub=sub)
    bad = invalid != ""
    if bad.any():
        res["reason"] = np.where(bad, invalid, res["reason"])
        res["feasible"] = res["feasible"] & ~bad
        for k, v in res.items():
            if k not in ("feasible", "reason", "chips"):
                res[k] = np.where(bad, np.nan, v)
    return res, ctx.obj.matrix(res), ctx.obj.ok(res)
