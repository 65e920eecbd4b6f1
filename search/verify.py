"""Multi-fidelity: re-check the best analytic Pareto points with the simulator.

``strategy.verify_top: K`` (with ``fidelity: analytic``, the search fidelity): after the
search, the K front points with the largest exclusive hypervolume contribution (ties: the
front's order) are replayed by the discrete-event simulator (``codesign.simulate``) on
the job's own trace, with ``workload.concurrent_sessions`` concurrent sessions (the load
the analytic evaluator assumed) but a capped replay: ``SESSIONS_PER_LANE`` x lanes sessions
in all (~0.2-1 s per deployment at 200 lanes; the simulator's own default is 16 x lanes).
A short replay is noisier for heavy-tailed tool gaps; it is a check of the analytic
ranking, not a converged measurement.

Each verified point keeps both values: ``metrics`` (analytic) and ``metrics_simulated``.
The front is then recomputed at simulation fidelity over the verified points (the job's
constraints applied to the simulated metrics): ``pareto_simulated`` says whether a point
stays non-dominated, and ``SearchResult.verification`` holds both hypervolumes of the
verified subset, the timing and the executor. Simulations run through the job's executor
(inline or one Ray task per deployment).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign.evaluate import METRICS
from search.pareto import hypervolume, nondominated

if TYPE_CHECKING:
    from search.driver import Search, SearchResult
    from search.executor import Executor

SESSIONS_PER_LANE = 2  # replayed sessions per concurrent session (simulator default: 16)
MAX_LANES = 4096  # concurrent sessions simulated at most


def select(result: SearchResult, k: int) -> list[int]:
    """Front indices to verify: the ``k`` largest hypervolume contributions."""
    contrib = np.array([p.hv_contribution for p in result.front])
    order = np.argsort(-contrib, kind="stable")
    return sorted(int(i) for i in order[:k])


def simulate_metrics(shared: tuple[Any, int, int, int], deployment: Any) -> dict[str, Any]:
    """One deployment's simulated metrics (a Ray task body: module-level, picklable)."""
    from codesign.simulate import simulate

    trace, lanes, total, seed = shared
    try:
        res = simulate(deployment, trace, lanes, total_sessions=total, seed=seed)
    except Exception as exc:  # an unsimulable point is reported, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"metrics": {m: float(res.metrics[m]) for m in METRICS}, "notes": list(res.notes)}


def verify(search: Search, result: SearchResult, executor: Executor) -> None:
    """Simulate the top ``strategy.verify_top`` front points; fill ``metrics_simulated``,
    ``pareto_simulated`` and ``result.verification`` in place."""
    spec = search.spec
    k = spec.strategy.verify_top
    if not k or not result.front:
        return
    t0 = time.perf_counter()
    idx = select(result, k)
    lanes = min(max(round(spec.workload.concurrent_sessions), 1), MAX_LANES)
    total = SESSIONS_PER_LANE * lanes
    shared = (search.trace, lanes, total, spec.strategy.seed)
    deps = [result.front[i].deployment for i in idx]
    outs = list(executor.map(simulate_metrics, shared, deps))
    sim = {m: np.full(len(idx), np.nan) for m in METRICS}
    errors = []
    for j, (i, out) in enumerate(zip(idx, outs, strict=True)):
        p = result.front[i]
        if "error" in out:
            errors.append(f"front #{i}: {out['error']}")
            p.metrics_simulated = {}
            continue
        p.metrics_simulated = out["metrics"]
        p.simulation_notes = out["notes"]
        for m in METRICS:
            sim[m][j] = out["metrics"][m]
    ana = {m: np.array([result.front[i].metrics[m] for i in idx]) for m in METRICS}
    res = {**sim, "feasible": np.array([bool(result.front[i].metrics_simulated) for i in idx])}
    f_sim, ok = search.obj.matrix(res), search.obj.ok(res)
    keep = np.zeros(len(idx), dtype=bool)
    keep[np.flatnonzero(ok)[nondominated(f_sim[ok])]] = True
    for j, i in enumerate(idx):
        result.front[i].pareto_simulated = bool(keep[j])
    f_ana = search.obj.matrix(ana)
    result.verification = {
        "verified": idx,
        "fidelity": "simulate",
        "concurrent_sessions": lanes,
        "replayed_sessions": total,
        "seed": spec.strategy.seed,
        "executor": executor.name,
        "seconds": time.perf_counter() - t0,
        "front_simulated": [i for j, i in enumerate(idx) if keep[j]],
        "hypervolume_analytic": hypervolume(f_ana),
        "hypervolume_simulated": hypervolume(f_sim[keep]) if keep.any() else 0.0,
        "rel_diff": {m: _median_rel(sim[m], ana[m]) for m in (o.metric for o in spec.objectives)},
        "errors": errors,
    }


def _median_rel(sim: np.ndarray, ana: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = sim / ana - 1.0
    r = r[np.isfinite(r)]
    return float(np.median(r)) if r.size else math.nan
