"""Objectives, constraints, the Pareto archive and hypervolume (moocore).

Objectives are normalised to minimisation: ``f = (v - best) / (worst - best)`` with a
fixed, documented (worst, best) pair per metric (``RANGES``; the worst value can be
overridden per job with ``strategy.reference``). The hypervolume reference point is then
``(1, ..., 1)``: the worst value of every objective; a point contributes only where it
beats all of them. With fixed ranges, hypervolumes of different runs of the same job
(and of the same objective set) are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import moocore
import numpy as np

from search.space import Points, concat, take
from search.spec import JobSpec

# metric -> (low, high, log): the normalisation range. For a "max" objective low is the
# worst (the reference) and high the best value; for "min" objectives the other way
# round. log: normalised on log10 values (throughput, cost and energy span decades; an
# agent fleet idles in tool gaps, so per-GPU throughput can be a few tokens/s).
RANGES: dict[str, tuple[float, float, bool]] = {
    "ttft_p50_s": (0.0, 600.0, False),
    "ttft_p90_s": (0.0, 600.0, False),
    "ttft_p99_s": (0.0, 600.0, False),
    "tpot_p50_ms": (0.0, 1000.0, False),
    "tpot_p90_ms": (0.0, 1000.0, False),
    "tokens_per_s_per_user": (1.0, 1e4, True),
    "output_tokens_per_s": (1.0, 1e8, True),
    "tokens_per_s_per_gpu": (1e-2, 1e5, True),
    "input_tokens_per_s": (1.0, 1e9, True),
    "cache_hit_ratio": (0.0, 1.0, False),
    "cache_hit_ratio_hbm": (0.0, 1.0, False),
    "cache_hit_ratio_host": (0.0, 1.0, False),
    "cache_hit_ratio_storage": (0.0, 1.0, False),
    "cache_hit_ratio_shared": (0.0, 1.0, False),
    "session_time_p50_s": (1.0, 1e6, True),
    "subagent_ttft_p50_s": (0.0, 600.0, False),
    "subagent_tpot_p50_ms": (0.0, 1000.0, False),
    "sessions_per_hour": (1.0, 1e7, True),
    "chips": (1.0, 1e5, True),
    "usd_per_hour": (1.0, 1e7, True),
    "usd_per_mtok_output": (1e-3, 1e4, True),
    "usd_per_mtok_input_uncached": (1e-3, 1e4, True),
    "usd_per_mtok_input_cached": (1e-3, 1e4, True),
    "usd_per_session": (1e-4, 1e4, True),
    "power_kw": (0.1, 1e5, True),
    "joules_per_output_token": (1e-2, 1e5, True),
    "utilization": (0.0, 1.0, False),
}
INFEASIBLE = 2.0  # normalised objective value told to a sampler for an infeasible trial


class Objectives:
    """Metric arrays -> normalised minimisation matrix and constraint violations."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.metrics = [o.metric for o in spec.objectives]
        self.maximise = [o.direction == "max" for o in spec.objectives]
        self.worst, self.best = [], []
        self.log = [RANGES[o.metric][2] for o in spec.objectives]
        for o in spec.objectives:
            lo, hi, _ = RANGES[o.metric]
            worst, best = (lo, hi) if o.direction == "max" else (hi, lo)
            worst = spec.strategy.reference.get(o.metric, worst)
            self.worst.append(worst)
            self.best.append(best)
        self.reference = {m: w for m, w in zip(self.metrics, self.worst, strict=True)}

    def matrix(self, res: dict[str, np.ndarray]) -> np.ndarray:
        """(n, k) normalised objectives (NaN where the metric is undefined)."""
        cols = []
        for m, w, b, log in zip(self.metrics, self.worst, self.best, self.log, strict=True):
            v = np.asarray(res[m], dtype=np.float64)
            if log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.where(v > 0, np.log10(np.maximum(v, 1e-300)), -np.inf)
                w, b = np.log10(w), np.log10(b)
            cols.append((v - b) / (w - b))
        f = np.column_stack(cols)
        return np.where(np.isinf(f), np.nan, f)

    def violations(self, res: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per constraint, the relative violation (> 0: violated; 1 where undefined)."""
        n = len(res["feasible"])
        out = {"feasible": np.where(res["feasible"], 0.0, 1.0)}
        for k, b in self.spec.constraints.items():
            v = res[k]
            viol = np.zeros(n)
            if b.max is not None:
                viol = np.maximum(viol, (v - b.max) / max(abs(b.max), 1e-9))
            if b.min is not None:
                viol = np.maximum(viol, (b.min - v) / max(abs(b.min), 1e-9))
            out[k] = np.where(np.isnan(viol), 1.0, viol)
        return out

    def ok(self, res: dict[str, np.ndarray]) -> np.ndarray:
        viol = self.violations(res)
        f = self.matrix(res)
        return np.all(np.column_stack(list(viol.values())) <= 0, axis=1) & np.all(
            np.isfinite(f), axis=1
        )


def nondominated(f: np.ndarray) -> np.ndarray:
    """Mask of the non-dominated rows (duplicates: the first is kept)."""
    if len(f) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(f, keep_weakly=False), dtype=bool)


def hypervolume(f: np.ndarray) -> float:
    inside = f[np.all(f < 1.0, axis=1)] if len(f) else f
    return float(moocore.hypervolume(inside, ref=np.ones(f.shape[1]))) if len(inside) else 0.0


def contributions(f: np.ndarray) -> np.ndarray:
    """Exclusive hypervolume contribution of each front point (0 outside the reference)."""
    out = np.zeros(len(f))
    inside = np.all(f < 1.0, axis=1) if len(f) else np.zeros(0, dtype=bool)
    if inside.sum():
        out[inside] = moocore.hv_contributions(f[inside], ref=np.ones(f.shape[1]))
    return out


@dataclass
class Archive:
    """The running Pareto front: normalised objectives, points and metrics of its rows."""

    f: np.ndarray | None = None
    pts: Points | None = None
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return 0 if self.f is None else len(self.f)

    def update(self, f: np.ndarray, ok: np.ndarray, pts: Points, res: dict) -> None:
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            return
        keep = nondominated(f[idx])
        idx = idx[keep]
        new_f, new_p = f[idx], take(pts, idx)
        new_m = {k: np.asarray(v)[idx] for k, v in res.items()}
        if self.f is not None:
            new_f = np.vstack([self.f, new_f])
            new_p = concat([self.pts, new_p])  # type: ignore[list-item]
            new_m = {k: np.concatenate([self.metrics[k], new_m[k]]) for k in new_m}
        keep = nondominated(new_f)
        self.f, self.pts = new_f[keep], take(new_p, keep)
        self.metrics = {k: v[keep] for k, v in new_m.items()}

    @property
    def hypervolume(self) -> float:
        return 0.0 if self.f is None else hypervolume(self.f)
