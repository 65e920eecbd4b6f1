"""Where the simulation and the analytic evaluator disagree, and why.

``compare_analytic`` runs ``codesign.evaluate.evaluate`` on the same deployment and trace
(the AgentLoad built as ``codesign evaluate`` builds it) and lines the metrics up with
relative differences (simulation / analytic - 1). ``explain`` adds the measured
quantities behind the usual residuals:

* decode batch: with tool and human gaps most sessions are thinking; the analytic path
  takes the running batch from Little's law (X (osl - 1) TPOT), the simulation measures
  the batch a decoding token shares (its step time is reported at that batch and at all
  of a worker's sessions, the batch a client-count model would assume);
* client gaps: a closed loop's throughput is N / mean cycle; heavy-tailed gaps (hours)
  make a finite replay converge slowly (share of gap time in gaps > 1 h, window length);
* queueing bursts: TTFT p99 / p50 in the simulation (sessions return in bursts);
* cache dynamics: block-level LRU with routing vs the hit-ratio curve at steady state.
"""

from __future__ import annotations

import math

import numpy as np

from codesign.deployment import Deployment
from codesign.evaluate import METRICS, evaluate
from codesign.simulate.metrics import SimResult
from codesign.workload.schema import Trace

KEY_METRICS = (
    "output_tokens_per_s",
    "tpot_p50_ms",
    "ttft_p50_s",
    "cache_hit_ratio",
    "session_time_p50_s",
    "usd_per_mtok_output",
)


def analytic_metrics(dep: Deployment, trace: Trace, sessions: float) -> dict[str, object]:
    from codesign.workload.agent_load import agent_load, session_gaps
    from codesign.workload.summary import summarize

    load = agent_load(summarize(trace), session_gaps(trace), merge_tiers=dep.subagents is None)
    out = evaluate([dep], load, sessions)
    return {k: out[k][0] for k in (*METRICS, "feasible", "reason")}


def _rel(sim: float, ana: float) -> float:
    if not (math.isfinite(sim) and math.isfinite(ana)) or ana == 0:
        return float("nan")
    return sim / ana - 1.0


def compare_rows(sim: dict[str, float], ana: dict[str, object]) -> list[dict[str, object]]:
    rows = []
    for k in METRICS:
        a = ana.get(k)
        a_f = float(a) if isinstance(a, int | float | np.floating | np.integer) else float("nan")
        rows.append(
            {"metric": k, "simulation": sim[k], "analytic": a_f, "rel_diff": _rel(sim[k], a_f)}
        )
    return rows


def explain(res: SimResult, trace: Trace, dep: Deployment, sessions: int) -> dict[str, object]:
    """Measured quantities behind the residuals (see the module docstring)."""
    d = res.diagnostics
    gap = np.nan_to_num(trace.gap_s.astype(np.float64))
    total_gap = max(float(gap.sum()), 1e-12)
    ttft = res.requests["ttft_s"]
    ttft = ttft[np.isfinite(ttft)]
    kv_workers = next(p.workers for p in dep.pools if p.role in ("agg", "decode"))
    return {
        "sessions_per_worker": sessions / kv_workers,
        "sim_decode_batch_seen_by_a_token": d.get("decode_batch_token_weighted", float("nan")),
        "sim_step_ms_at_that_batch": d.get("step_ms_at_sim_batch", float("nan")),
        "sim_step_ms_at_all_sessions_batch": d.get("step_ms_at_analytic_batch", float("nan")),
        "gap_time_share_over_1h": float(gap[gap > 3600].sum()) / total_gap,
        "window_s": res.window_s[1] - res.window_s[0],
        "max_gap_s": float(gap.max()) if gap.size else 0.0,
        "ttft_p99_over_p50": float(np.quantile(ttft, 0.99) / max(np.quantile(ttft, 0.5), 1e-9))
        if ttft.size
        else float("nan"),
    }


def compare_analytic(
    res: SimResult, dep: Deployment, trace: Trace, sessions: int
) -> dict[str, object]:
    ana = analytic_metrics(dep, trace, sessions)
    return {
        "rows": compare_rows(res.metrics, ana),
        "analytic_feasible": bool(ana["feasible"]),
        "analytic_reason": str(ana["reason"]),
        "explain": explain(res, trace, dep, sessions),
    }
