"""Per-request records and aggregate metrics of a simulation (names as ``evaluate.METRICS``).

Rates and utilisation are measured over the window [last lane start, first lane out of
sessions] (``engine``); latency percentiles over the requests sent in that window (all
requests if the window is empty), the main model's (part 0) and, apart, the sub-agent
pools' (part 1); session time over the sessions that started in it.
Cost and power use the measured busy fraction of each pool's engines as the utilisation
(``hwmodels.usd_per_chip_hour``, ``power_w_per_chip`` x PUE).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.evaluate import METRICS
from hwmodels import power_w_per_chip, usd_per_chip_hour

TIERS = ("none", "hbm", "host", "storage", "shared")


@dataclass(frozen=True)
class SimResult:
    requests: dict[str, np.ndarray]  # per request: see ``request_table``
    metrics: dict[str, float]
    window_s: tuple[float, float]
    sessions_started: int
    events: int
    notes: list[str] = field(default_factory=list)
    diagnostics: dict[str, float] = field(default_factory=dict)

    @property
    def n_requests(self) -> int:
        return int(self.requests["trace_idx"].size)


def request_table(sim) -> dict[str, np.ndarray]:
    """Per request: trace index, session copy, part, worker, issue/first/finish times,
    TTFT (s), TPOT (s), tokens in/out, cached tokens and the hit tier (0 none, 1 HBM,
    2 host, 3 storage, 4 shared store: the tier most of its cached prefix came from)."""
    a = sim.req.arrays()
    ttft = a["t_first"] - a["t_issue"]
    dec = np.maximum(a["n_out"] - 1, 1)
    tpot = np.where(a["n_out"] > 1, (a["t_finish"] - a["t_first"]) / dec, np.nan)
    parts = np.stack([a["cached"] - a["host_tok"] - a["sto_tok"] - a["shared_tok"],
                      a["host_tok"], a["sto_tok"], a["shared_tok"]])  # fmt: skip
    most = 1 + np.argmax(parts, axis=0)  # the first of equals
    tier = np.where(a["cached"] <= 0, 0, most)
    a.update(ttft_s=ttft, tpot_s=tpot, hit_tier=tier)
    return a


def _pct(x: np.ndarray, q: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.quantile(x, q)) if x.size else float("nan")


def aggregate(sim, reqs: dict[str, np.ndarray]) -> tuple[dict[str, float], list[str]]:
    notes: list[str] = []
    lo, hi = sim.window
    t_end = float(np.nanmax(reqs["t_finish"])) if reqs["t_finish"].size else 0.0
    if not np.isfinite(hi) or hi <= lo:
        notes.append(
            "measurement window empty (too few sessions for the lanes): "
            "measured over the whole run, ramp-up and drain included"
        )
        lo, hi = 0.0, t_end
    whole = lo == 0.0 and hi == t_end
    span = max(hi - lo, 1e-9)
    sent = (reqs["t_issue"] >= lo) & (reqs["t_issue"] < hi)
    done = (reqs["t_finish"] >= lo) & (reqs["t_finish"] <= hi)
    if not sent.any():
        sent = np.ones_like(sent)
    n_in, n_out, cached = reqs["n_in"], reqs["n_out"], reqs["cached"]
    out_tok = float(n_out[done].sum()) / span
    in_tok = float(n_in[done].sum()) / span
    hit = float(cached[done].sum()) / max(float(n_in[done].sum()), 1e-12)
    host = float(reqs["host_tok"][done].sum()) / max(float(n_in[done].sum()), 1e-12)
    sto = float(reqs["sto_tok"][done].sum()) / max(float(n_in[done].sum()), 1e-12)
    shared = float(reqs["shared_tok"][done].sum()) / max(float(n_in[done].sum()), 1e-12)
    req_per_s = float(done.sum()) / span
    # latency percentiles of the main model's requests (part 0), as the evaluator reports
    # them; the sub-agent pools' requests (part 1) have their own
    main, sub = sent & (reqs["part"] == 0), sent & (reqs["part"] == 1)
    if not main.any() and not sub.any():
        main = sent
    ttft, tpot = reqs["ttft_s"][main], reqs["tpot_s"][main]
    starts = np.asarray(sim.copy_start)
    ends = np.asarray(sim.copy_end)
    in_win = (starts >= lo) & np.isfinite(ends)
    if not in_win.any():
        in_win = np.isfinite(ends)
    usd = power = busy_chips = chips = 0.0
    for p in sim.parts:
        for ws, model in ((p.workers, p.kv_model), (p.pf_workers, p.pf_model)):
            for w in ws:
                u = min((w.busy_total_s if whole else w.busy_s) / span, 1.0)
                n = model.chips_per_worker
                usd += n * float(usd_per_chip_hour(model.system, u))
                power += n * float(power_w_per_chip(model.system, u)) * model.system.pue
                busy_chips += n * u
                chips += n
    per_s = usd / 3600.0
    sessions_per_s = req_per_s / max(float(sim.plan.requests_per_session.mean()), 1e-9)
    tpot50 = _pct(tpot, 0.5)
    # the main model's mean response beyond the trace's server time for the same requests
    fin = main & done
    server = np.nan_to_num(np.asarray(sim.trace.server_s, dtype=np.float64))
    resp = reqs["t_finish"][fin] - reqs["t_issue"][fin]
    recorded = server[reqs["trace_idx"][fin].astype(np.int64)]
    delay = float(resp.mean() - recorded.mean()) if fin.any() else float("nan")
    m = {
        "ttft_p50_s": _pct(ttft, 0.5),
        "ttft_p90_s": _pct(ttft, 0.9),
        "ttft_p99_s": _pct(ttft, 0.99),
        "tpot_p50_ms": tpot50 * 1e3,
        "tpot_p90_ms": _pct(tpot, 0.9) * 1e3,
        "tokens_per_s_per_user": 1.0 / tpot50 if tpot50 > 0 else float("nan"),
        "output_tokens_per_s": out_tok,
        "tokens_per_s_per_gpu": out_tok / max(chips, 1.0),
        "input_tokens_per_s": in_tok,
        "cache_hit_ratio": hit,
        "cache_hit_ratio_hbm": hit - host - sto - shared,
        "cache_hit_ratio_host": host,
        "cache_hit_ratio_storage": sto,
        "cache_hit_ratio_shared": shared,
        "session_time_p50_s": _pct(ends[in_win] - starts[in_win], 0.5),
        "subagent_ttft_p50_s": _pct(reqs["ttft_s"][sub], 0.5),
        "subagent_tpot_p50_ms": _pct(reqs["tpot_s"][sub], 0.5) * 1e3,
        "sessions_per_hour": sessions_per_s * 3600.0,
        "chips": chips,
        "usd_per_hour": usd,
        "usd_per_mtok_output": per_s / max(out_tok, 1e-12) * 1e6,
        "usd_per_mtok_input_uncached": float("nan"),
        "usd_per_mtok_input_cached": float("nan"),
        "usd_per_session": per_s / max(sessions_per_s, 1e-12),
        "power_kw": power / 1e3,
        "joules_per_output_token": power / max(out_tok, 1e-12),
        "utilization": busy_chips / max(chips, 1.0),
        "response_delay_s": delay,
        "kv_tokens_per_worker": float(sim.parts[0].kv_model.kv_tokens_per_worker),
        "prefill_kv_tokens_per_worker": float(sim.parts[0].prefill_model.kv_tokens_per_worker),
        "requests_per_s": req_per_s,
    }
    assert set(METRICS) <= set(m)
    return m, notes


def diagnostics(sim, reqs: dict[str, np.ndarray]) -> dict[str, float]:
    """Decode batch a token shares on the main KV pool, and the step time there."""
    part = sim.parts[0]
    n_s = sum(w.dec_n_s for w in part.workers)
    n2_s = sum(w.dec_n2_s for w in part.workers)
    batch = n2_s / n_s if n_s > 0 else 0.0
    main = reqs["part"] == 0
    ctx = float(np.mean(reqs["n_in"][main] + reqs["n_out"][main] / 2)) if main.any() else 0.0
    m = part.kv_model
    analytic_batch = sim.n_lanes / len(part.workers)
    return {
        "decode_batch_token_weighted": batch,
        "decode_context_mean_tokens": ctx,
        "step_ms_at_sim_batch": m.step_s(max(int(np.ceil(batch / m.dp)), 1), ctx)
        * 1e3
        / m.spec_tokens_per_step,
        "step_ms_at_analytic_batch": m.step_s(max(int(np.ceil(analytic_batch / m.dp)), 1), ctx)
        * 1e3
        / m.spec_tokens_per_step,
        "engine_steps": float(sum(w.steps for p in sim.parts for w in (*p.workers, *p.pf_workers))),
    }
