"""(deployments, agent workload) -> metrics: the one objective function (analytic fidelity).

Each deployment serves ``concurrent_sessions`` agent sessions. A session is a closed-loop
client: it sends a request, waits for the response, then spends the trace's client gap
(tool execution or a human) before the next one. Per deployment:

1. the KV capacity of a worker (device memory after weights, plus the configured host
   tier) and the sessions sharing that cache (all of them under round-robin routing, a
   worker's share under session-affine or KV-aware routing) give the prefix-hit ratio from
   the trace's hit-ratio curve, split into device and host hits;
2. the mean request (context, uncached new tokens, output) runs through the calibrated
   step model and the closed-loop serving solution with the gap as think time;
3. throughput, latency percentiles, session time, cost, power and energy follow.

Deployments are grouped by model and evaluated in one vectorised call per group.

Queueing: the calibration's queue and cohort terms describe benchmark clients that fire
their next request the instant a response ends (equal output lengths keep them in step).
Agent sessions wait a random tool or human gap first, so many independent sessions arrive
like a Poisson stream: the evaluator uses the M/D/1 wait, rho / (2 (1 - rho)) x service
(queue factor 1/2), and no cohort term.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.deployment import Deployment, Pool
from codesign.errors import CodesignError
from codesign.evaluate_rows import build_group
from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.predict import evaluate_group
from codesign.workload.agent_load import AgentLoad, TierLoad
from hwmodels import System, derive_system, get_system, power_w_per_chip, usd_per_chip_hour

AGENT_QUEUE_FACTOR = 0.5  # M/D/1: Poisson arrivals, deterministic service

METRICS = (
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p99_s",
    "tpot_p50_ms",
    "tpot_p90_ms",
    "tokens_per_s_per_user",
    "output_tokens_per_s",
    "tokens_per_s_per_gpu",
    "input_tokens_per_s",
    "cache_hit_ratio",
    "cache_hit_ratio_hbm",
    "cache_hit_ratio_host",
    "session_time_p50_s",
    "sessions_per_hour",
    "chips",
    "usd_per_hour",
    "usd_per_mtok_output",
    "usd_per_mtok_input_uncached",
    "usd_per_mtok_input_cached",
    "usd_per_session",
    "power_kw",
    "joules_per_output_token",
    "utilization",
)


def pool_system(pool: Pool) -> System:
    system = get_system(pool.system)
    return derive_system(system, set=pool.hardware) if pool.hardware else system


def _tier_for(load: AgentLoad, sub: bool) -> tuple[str, TierLoad]:
    if "all" in load.tiers:
        return "all", load.tiers["all"]
    name = "small" if sub else "main"
    if name not in load.tiers:
        name = next(iter(load.tiers))
    return name, load.tiers[name]


def evaluate(
    deployments: Sequence[Deployment],
    load: AgentLoad,
    concurrent_sessions: float,
    calib: Calibration | None = None,
) -> dict[str, np.ndarray]:
    """Metrics arrays (one entry per deployment) plus ``feasible`` and ``reason``."""
    calib = (calib or load_calibration()).model_copy(
        update={"queue_factor": AGENT_QUEUE_FACTOR, "sync_factor": 0.0}
    )
    n = len(deployments)
    out: dict[str, np.ndarray] = {m: np.full(n, np.nan) for m in METRICS}
    out["feasible"] = np.zeros(n, dtype=bool)
    out["reason"] = np.full(n, "", dtype=object)
    sessions = float(concurrent_sessions)
    if sessions <= 0:
        raise CodesignError("concurrent_sessions must be > 0")
    parts: list[tuple[int, str, bool]] = []
    for k, dep in enumerate(deployments):
        try:  # unknown systems or bad hardware overrides fail this deployment only
            for pool in [*dep.pools, *(dep.subagents.pools if dep.subagents else [])]:
                pool_system(pool)
        except CodesignError as exc:
            out["reason"][k] = str(exc)
            continue
        parts.append((k, dep.model, False))
        if dep.subagents is not None:
            parts.append((k, dep.subagents.model, True))
    per_part: dict[tuple[int, bool], dict[str, float]] = {}
    by_model: dict[str, list[tuple[int, bool]]] = {}
    for k, model, sub in parts:
        by_model.setdefault(model, []).append((k, sub))
    for model, members in by_model.items():
        try:
            group, infeasible, rate_mult = build_group(
                model, [(deployments[k], sub) for k, sub in members], load, sessions, calib
            )
        except CodesignError as exc:
            for k, _ in members:
                out["reason"][k] = str(exc)
            continue
        res = evaluate_group(group, calib)
        for j, (k, sub) in enumerate(members):
            if infeasible[j]:
                out["reason"][k] = out["reason"][k] or infeasible[j]
                continue
            # agg rows describe one worker: scale its throughput to the pool
            res_j = {key: float(v[j]) for key, v in res.items()}
            res_j["requests_per_s"] *= float(rate_mult[j])
            per_part[(k, sub)] = res_j | {
                "hit": float(group.prefix_hit[j]),
                "host_share": float(group.host_share[j]),
                "think": float(group.think_s[j]),
                "isl": float(group.rows.isl[j]),
                "osl": float(group.rows.osl[j]),
            }
    for k, dep in enumerate(deployments):
        if out["reason"][k]:
            continue
        _fill(out, k, dep, per_part, load, sessions)
    return out


def _fill(
    out: dict[str, np.ndarray],
    k: int,
    dep: Deployment,
    parts: dict[tuple[int, bool], dict[str, float]],
    load: AgentLoad,
    sessions: float,
) -> None:
    main = parts[(k, False)]
    sub = parts.get((k, True))
    ttft, tpot = main["ttft_s"], main["tpot_s"]
    if not (np.isfinite(ttft) and np.isfinite(tpot)):
        out["reason"][k] = "overloaded: no steady state at this load"
        return
    _, tier = _tier_for(load, False)
    q = tier.quantile_ratio(np.array([main["hit"]]))[0]
    own = main.get("own_prefill_s", 0.0)
    for name, ratio in zip(("ttft_p50_s", "ttft_p90_s", "ttft_p99_s"), q, strict=True):
        out[name][k] = max(ttft + own * (ratio - 1.0), 0.0)
    out["tpot_p50_ms"][k] = tpot * 1e3
    out["tpot_p90_ms"][k] = main.get("tpot_hi_s", tpot) * 1e3
    out["tokens_per_s_per_user"][k] = 1.0 / tpot
    reqs = main["requests_per_s"]
    out_tok = reqs * main["osl"]
    in_tok = reqs * main["isl"]
    cached_tok = in_tok * main["hit"]
    chips = float(dep.chips)
    usd_h, power_w, util = _cost(dep, main, sub)
    if sub is not None:
        out_tok += sub["requests_per_s"] * sub["osl"]
        in_tok += sub["requests_per_s"] * sub["isl"]
        cached_tok += sub["requests_per_s"] * sub["isl"] * sub["hit"]
    resp = ttft + (main["osl"] - 1) * tpot
    out["output_tokens_per_s"][k] = out_tok
    out["input_tokens_per_s"][k] = in_tok
    out["tokens_per_s_per_gpu"][k] = out_tok / chips
    out["cache_hit_ratio"][k] = cached_tok / max(in_tok, 1e-12)
    out["cache_hit_ratio_host"][k] = main["hit"] * main["host_share"]
    out["cache_hit_ratio_hbm"][k] = main["hit"] * (1 - main["host_share"])
    out["session_time_p50_s"][k] = float(load.session_time_p50_s(np.array([resp]))[0])
    sessions_per_s = (reqs + (sub["requests_per_s"] if sub else 0.0)) / max(
        load.requests_per_session_mean, 1e-9
    )
    out["sessions_per_hour"][k] = sessions_per_s * 3600.0
    out["chips"][k] = chips
    out["usd_per_hour"][k] = usd_h
    out["utilization"][k] = util
    per_s = usd_h / 3600.0
    out["usd_per_mtok_output"][k] = per_s / max(out_tok, 1e-12) * 1e6
    # input pricing by time share of the main pools: uncached tokens pay for the prefill
    # compute, cached tokens for loading host-memory hits (device-memory hits only occupy
    # memory, which the output price already carries)
    share_pf, share_load = _input_shares(dep, main)
    uncached = max(in_tok - cached_tok, 1e-12)
    out["usd_per_mtok_input_uncached"][k] = per_s * share_pf / uncached * 1e6
    out["usd_per_mtok_input_cached"][k] = per_s * share_load / max(cached_tok, 1e-12) * 1e6
    out["usd_per_session"][k] = per_s / max(sessions_per_s, 1e-12)
    out["power_kw"][k] = power_w / 1e3
    out["joules_per_output_token"][k] = power_w / max(out_tok, 1e-12)
    out["feasible"][k] = True


def _input_shares(dep: Deployment, main: dict[str, float]) -> tuple[float, float]:
    """Fractions of the deployment's cost spent on prefill compute and on host KV loads."""
    total = float(dep.chips)
    if dep.mode == "agg":
        pool = dep.pools[0]
        ranks = pool.workers * pool.parallel.dp
        load = main["requests_per_s"] / ranks * main.get("kv_load_s", 0.0)
        return main["prefill_utilization"] * pool.chips / total, min(load, 1.0) * pool.chips / total
    prefill = dep.pools[
        [p.role for p in dep.pools].index("prefill" if dep.mode == "disagg" else "attention")
    ]
    share = prefill.chips / total * min(main["prefill_utilization"], 1.0)
    load = (
        main["requests_per_s"]
        / (prefill.workers * prefill.parallel.dp)
        * main.get("kv_load_s", 0.0)
    )
    return share, min(load, 1.0) * prefill.chips / total


def _cost(
    dep: Deployment, main: dict[str, float], sub: dict[str, float] | None
) -> tuple[float, float, float]:
    """($/hour, W, utilisation) over every pool: busy fraction 1 - exp(-requests in flight)."""
    usd, power, busy_chips, chips = 0.0, 0.0, 0.0, 0.0
    for pools, part in ((dep.pools, main), (dep.subagents.pools if dep.subagents else [], sub)):
        if part is None:
            continue
        in_flight = part["requests_per_s"] * (part["ttft_s"] + (part["osl"] - 1) * part["tpot_s"])
        for pool in pools:
            per_worker = in_flight / pool.workers
            u = float(1.0 - np.exp(-per_worker))
            system = pool_system(pool)
            usd += pool.chips * float(usd_per_chip_hour(system, u))
            power += pool.chips * float(power_w_per_chip(system, u)) * system.pue
            busy_chips += pool.chips * u
            chips += pool.chips
    return usd, power, busy_chips / max(chips, 1.0)
