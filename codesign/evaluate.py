"""(deployments, agent workload) -> metrics: the one objective function (analytic fidelity).

Each deployment serves ``concurrent_sessions`` agent sessions. A session is a closed-loop
client: it sends a request, waits for the response, then spends the trace's client gap
(tool execution or a human) before the next one. Per deployment:

1. the KV capacity of a worker and the sessions sharing it give the prefix-hit ratio from
   the hit-ratio curve of the requests the part serves, split into device and host hits
   (``evaluate_core``);
2. the mean request (context, uncached new tokens, output) runs through the calibrated
   step model and the closed-loop serving solution with the gap as think time;
3. throughput, latency percentiles, session time, cost, power and energy follow.

Sub-agent requests run on the deployment's sub-agent pools (their own model) when it has
them. Every part is tied to one session rate N / T: a session lasts its primary agent's
requests and gaps (which hold the recorded waits for its sub-agents) plus what the
sub-agents' responses add on its critical path, and each part carries its tier's requests
per session at that rate (``tier_clients``). Everything after the conversion of
`Deployment` objects into `Candidates` is vectorised: ``evaluate_arrays`` is the search's
entry point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.candidates import Candidates, from_deployments
from codesign.deployment import Deployment
from codesign.errors import CodesignError
from codesign.evaluate_core import evaluate_candidates
from codesign.evaluate_delay import response_s, settle_delays
from codesign.perf.calibration import Calibration, load_calibration
from codesign.serving.adp_balance import balance_wait_quantile_s
from codesign.workload.agent_load import QUANTILES, SUB_TIER, AgentLoad, TierLoad
from codesign.workload.summary import ALL
from hwmodels import power_w_per_chip, usd_per_chip_hour

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
    "cache_hit_ratio_storage",
    "cache_hit_ratio_shared",
    "session_time_p50_s",
    "subagent_ttft_p50_s",
    "subagent_tpot_p50_ms",
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
    "response_delay_s",
    "kv_tokens_per_worker",
    "prefill_kv_tokens_per_worker",
)


def tier_of(load: AgentLoad, sub: bool) -> TierLoad:
    """The tier a deployment part serves (as ``agent_load._tier_groups`` splits them)."""
    if ALL in load.tiers:
        return load.tiers[ALL]
    name = SUB_TIER if sub else "main"
    return load.tiers.get(name) or next(iter(load.tiers.values()))


MAX_PASSES = 5  # evaluations of a part while its clients settle (no sub-agents: 1)
TOLERANCE = 0.005  # clients within 0.5% of the fixed point


def session_time_s(tiers: Sequence[TierLoad], response_s: Sequence[np.ndarray]) -> np.ndarray:
    """Mean session duration when each tier's requests take ``response_s`` (per candidate):
    the primary agents' requests and gaps one after another, their gaps holding the
    recorded waits for sub-agents, plus the sub-agents' responses beyond their recorded
    server time on the critical path (parallel sub-agents overlap): sum of a_t r_t + b_t
    (``TierLoad.critical_requests``, ``critical_fixed_s``)."""
    t = sum(
        tl.critical_requests * r + tl.critical_fixed_s
        for tl, r in zip(tiers, response_s, strict=True)
    )
    floor = sum(tl.critical_requests * r for tl, r in zip(tiers, response_s, strict=True))
    return np.maximum(np.asarray(t, dtype=np.float64), np.maximum(floor, 1e-9))


def tier_clients(
    tiers: Sequence[TierLoad], sessions: float | np.ndarray, response_s: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Closed-loop clients of the part serving each tier, all tied to one session rate
    N / T (``session_time_s``): tier t's requests arrive at N R_t / T, the trace's requests
    per session, and its part (a closed loop with the tier's mean gap as think time)
    carries them with N R_t (r_t + g_t) / T clients (Little's law). Without sub-agents
    that is N; with them it counts the sub-agent loops running at once."""
    n = np.asarray(sessions, dtype=np.float64)
    if all(tl.serial for tl in tiers):
        return [n * np.ones_like(np.asarray(r, dtype=np.float64)) for r in response_s]
    t = session_time_s(tiers, response_s)
    return [
        n * tl.requests_per_session * (r + tl.think_mean_s) / t
        for tl, r in zip(tiers, response_s, strict=True)
    ]


def _evaluate_parts(
    parts: list[tuple[Candidates, TierLoad]],
    load: AgentLoad,
    sessions: float | np.ndarray,
    calib: Calibration,
) -> list[dict[str, np.ndarray]]:
    """Each part's outputs at the clients that tie it to one session rate (``tier_clients``).

    The clients depend on the response times they produce: a fixed point, first evaluated
    at the recorded server times. A part near saturation answers more clients with a
    longer response, so plain iteration crawls (each step ~0.4 of the last on the
    sub-agent pools of ``deployment-r1-disagg-subagents.yaml``). Each part takes a secant
    step on its own clients, with the other parts' share of the session held at their
    latest responses (they couple weakly), and lands within 0.5% in two or three more
    passes, each re-evaluating only the candidates still moving."""
    n = len(parts[0][0])
    sess = np.broadcast_to(np.asarray(sessions, dtype=np.float64), (n,))
    tiers = [t for _, t in parts]
    resp = [np.full(n, t.server_mean_s) for t in tiers]
    x = tier_clients(tiers, sess, resp)
    out = [
        evaluate_candidates(c, load, t, k, calib, sess) for (c, t), k in zip(parts, x, strict=True)
    ]
    if all(t.serial for t in tiers):  # the clients are the sessions, whatever the responses
        return _settled(parts, load, sess, calib, x, out)
    todo = np.ones(n, dtype=bool)
    prev: list[tuple[np.ndarray, np.ndarray]] | None = None  # (clients, response) per part
    for _ in range(MAX_PASSES - 1):
        # an overloaded part (no finite response) keeps its last finite one
        resp = [
            np.where(np.isfinite(r := response_s(o)), r, p) for o, p in zip(out, resp, strict=True)
        ]
        share = [
            t.critical_requests * r + t.critical_fixed_s for t, r in zip(tiers, resp, strict=True)
        ]
        x_new, moved = [], np.zeros(n, dtype=bool)
        for j, t in enumerate(tiers):
            rest = sum(share) - share[j]  # the other parts' time per session

            def f(r: np.ndarray, t: TierLoad = t, rest: np.ndarray = rest) -> np.ndarray:
                cycle = np.maximum(t.critical_requests * r + t.critical_fixed_s + rest, 1e-9)
                return sess * t.requests_per_session * (r + t.think_mean_s) / cycle

            g = f(resp[j]) - x[j]
            moved |= np.abs(g) > TOLERANCE * np.maximum(x[j], 1e-9)
            step = x[j] + g
            if prev is not None:  # secant on g(x) = F(x) - x, both points at this ``rest``
                x0, r0 = prev[j]
                dg = g - (f(r0) - x0)
                ok = np.abs(dg) > 1e-12 * np.maximum(x[j], 1.0)
                sec = x[j] - g * (x[j] - x0) / np.where(ok, dg, 1.0)
                lo, hi = np.minimum(x[j], step), np.maximum(x[j], step)
                step = np.where(ok, np.clip(sec, 0.5 * lo, 2.0 * hi), step)
            x_new.append(step)
        todo &= moved
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        for j, (c, t) in enumerate(parts):
            x_new[j] = np.where(todo, x_new[j], x[j])
            part = evaluate_candidates(c.subset(idx), load, t, x_new[j][idx], calib, sess[idx])
            for k, v in part.items():
                out[j][k] = np.array(out[j][k], copy=True)
                out[j][k][idx] = v
        prev = list(zip(x, resp, strict=True))
        x = x_new
    return _settled(parts, load, sess, calib, x, out)


def _settled(parts, load, sess, calib, clients, out) -> list[dict[str, np.ndarray]]:
    """Each part at the response delay its hits settle to (`evaluate_delay`), at the
    clients found at the trace's timing. With sub-agents the parts' clients would move
    with the delay; they are not settled again, as they move little: the disaggregated R1
    example on 64 fleet sessions at 128 concurrent, its main part 908 s late, gets
    128.03 -> 128.06 main-agent clients re-derived from the settled responses (sub-agents
    are 0.5% of that fleet's requests, 1.4% of the Claude Code traces')."""
    return [
        settle_delays(c, load, t, np.broadcast_to(k, (len(c),)).astype(np.float64), calib, sess, o)
        for (c, t), k, o in zip(parts, clients, out, strict=True)
    ]


def _pool_cost(c: Candidates, part: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """($/hour, wall W, busy chips, chips) per candidate. A worker that serves requests end
    to end (aggregated, or a decode worker) is busy 1 - exp(-its requests in flight); a
    prefill worker only while it prefills, its pool's prefill utilisation."""
    in_flight = part["requests_per_s"] * (part["ttft_s"] + (part["osl"] - 1) * part["tpot_s"])
    usd, power, busy = (np.zeros(len(c)) for _ in range(3))
    u_kv = 1.0 - np.exp(-np.nan_to_num(in_flight, nan=0.0) / c.workers)
    u_pf = np.clip(np.nan_to_num(part.get("prefill_utilization", u_kv), nan=0.0), 0.0, 1.0)
    pools = [
        (c.sys_d, c.workers * c.tp * c.dp * c.pp, u_kv),
        (c.sys_p, np.where(c.mode == "agg", 0, c.p_workers * c.p_tp * c.p_dp * c.p_pp), u_pf),
    ]
    for sys_idx, chips, u in pools:
        for s in np.unique(sys_idx):
            m = sys_idx == s
            system = c.systems[s]
            usd[m] += chips[m] * usd_per_chip_hour(system, u[m])
            power[m] += chips[m] * power_w_per_chip(system, u[m]) * system.pue
            busy[m] += chips[m] * u[m]
    return usd, power, busy, c.chips


def _ttft_percentiles(
    ttft: np.ndarray, own: np.ndarray, q: np.ndarray, m: dict[str, np.ndarray], tier: TierLoad
) -> list[np.ndarray]:
    """TTFT p50/p90/p99: the mean request's TTFT with the work that grows with its new
    tokens (``own``: its prefill alone and the request handling per uncached token, not the
    decodes its steps carry) replaced by the mean prompt's (``own_prefill_typical_s``: the
    mean's attention work is the long contexts' that miss, not a typical request's) scaled
    by the new-token quantile, and its mean queue wait W replaced by that quantile of the
    wait.
    Sessions arrive like a Poisson stream, so (M/G/1) a fraction 1 - rho of requests finds
    the prefill slot free and waits nothing; the others wait W / rho on average, spread
    like the residual life of the prefill work (``TierLoad.wait_ratio``): quantile p is
    the waiting requests' quantile at tail probability (1 - p) / rho, for p > 1 - rho.
    With c prefill servers (a disaggregated pool) the share that waits is Erlang C's, not
    rho (``closed_loop.wait_probability``)."""
    wait = np.nan_to_num(m.get("queue_wait_s", np.zeros_like(ttft)), nan=0.0)
    # where every slot is taken, requests wait for one to free (Little's law sets the
    # mean): nearly all of them wait, so it spreads like an exponential wait, not like
    # the rare waits behind a busy prefill
    slot = np.minimum(np.nan_to_num(m.get("slot_wait_s", np.zeros_like(ttft)), nan=0.0), wait)
    wait = wait - slot
    # the share of requests that wait: rho for one prefill server (a rank prefilling its
    # own requests), Erlang C for a disaggregated pool of several
    p_wait = m.get("prefill_wait_probability", m["prefill_utilization"])
    rho = np.clip(np.nan_to_num(p_wait, nan=0.0), 1e-9, 1.0 - 1e-9)
    hit = np.nan_to_num(m["hit"], nan=0.0) * np.ones_like(ttft)
    # TRT-LLM attention-DP balancing holds a request min(U T, F): its own quantiles
    zero = np.zeros_like(ttft)
    held = np.nan_to_num(m.get("adp_wait_s", zero), nan=0.0)
    cycle = np.nan_to_num(m.get("adp_cycle_s", zero), nan=0.0)
    fill = np.nan_to_num(m.get("adp_fill_s", zero + np.inf), nan=np.inf)
    typical = np.nan_to_num(m.get("own_prefill_typical_s", own), nan=0.0)
    out = []
    for k, p in enumerate(QUANTILES):
        tail = (1.0 - p) / rho
        w_p = np.where(tail < 1.0, wait / rho * tier.wait_ratio(hit, np.minimum(tail, 1.0)), 0.0)
        held_p = balance_wait_quantile_s(p, cycle, fill)
        slot_p = slot * -np.log1p(-p)
        out.append(
            np.maximum(
                ttft - wait - slot - held - own + typical * q[:, k] + w_p + slot_p + held_p, 0.0
            )
        )
    return out


def evaluate_arrays(
    main: Candidates,
    load: AgentLoad,
    concurrent_sessions: float | np.ndarray,
    calib: Calibration | None = None,
    sub: Candidates | None = None,
) -> dict[str, np.ndarray]:
    """Metrics for candidates given as arrays (``sub``: their sub-agent parts, same order);
    ``concurrent_sessions`` is a number or one per candidate (e.g. a concurrency sweep)."""
    calib = calib or load_calibration()
    if np.any(np.asarray(concurrent_sessions) <= 0):
        raise CodesignError("concurrent_sessions must be > 0")
    t_main = tier_of(load, False)
    # the sub-agent pools serve the sub-agent tier when the trace has one, else nothing
    t_sub = tier_of(load, True)
    parts = [(main, t_main)]
    if sub is not None and t_sub is not t_main:
        parts.append((sub, t_sub))
    res = _evaluate_parts(parts, load, concurrent_sessions, calib)
    m = res[0]
    usd, power, busy, chips = _pool_cost(main, m)
    if main.shared_usd_per_hour is not None:  # the shared KV store, when priced
        usd = usd + np.asarray(main.shared_usd_per_hour, dtype=np.float64)
    reason = m["reason"].copy()
    out_tok, in_tok = m["requests_per_s"] * m["osl"], m["requests_per_s"] * m["isl"]
    # device, host and storage hits, token-weighted over the parts
    cached_host = in_tok * m["hit"] * m["host_share"]
    cached_sto = in_tok * m["hit"] * m["storage_share"]
    cached_sh = in_tok * m["hit"] * m["shared_share"]
    cached_hbm = in_tok * m["hit"] - cached_host - cached_sto - cached_sh
    reqs = m["requests_per_s"].copy()
    if sub is not None:
        # no sub-agent tier in the load: the pools idle (they still cost)
        idle = np.zeros(len(main))
        s = res[1] if len(res) > 1 else evaluate_candidates(sub, load, t_sub, idle, calib, idle)
        su, sp, sb, sc = _pool_cost(sub, s)
        usd, power, busy, chips = usd + su, power + sp, busy + sb, chips + sc
        # sub-agent requests the pools cannot keep up with stall their sessions too
        steady = np.isfinite(s["ttft_s"]) & np.isfinite(s["tpot_s"]) & (s["requests_per_s"] > 0)
        unstable = ~steady if len(res) > 1 else np.zeros(len(main), dtype=bool)
        s_reason = np.where(
            (s["reason"] == "") & unstable, "overloaded: no steady state at this load", s["reason"]
        )
        reason = np.where(
            reason == "", np.where(s_reason == "", "", "sub-agents: " + s_reason), reason
        )
        s_in = s["requests_per_s"] * s["isl"]
        out_tok = out_tok + s["requests_per_s"] * s["osl"]
        in_tok = in_tok + s_in
        s_off = s["host_share"] + s["storage_share"] + s["shared_share"]
        cached_hbm = cached_hbm + s_in * s["hit"] * (1 - s_off)
        cached_host = cached_host + s_in * s["hit"] * s["host_share"]
        cached_sto = cached_sto + s_in * s["hit"] * s["storage_share"]
        cached_sh = cached_sh + s_in * s["hit"] * s["shared_share"]
        reqs = reqs + s["requests_per_s"]
    cached = cached_hbm + cached_host + cached_sto + cached_sh
    # the sub-agent part, when it serves the load's sub-agent tier: its responses lengthen
    # the sessions (critical path), its latencies are reported beside the main model's
    nan = np.full(len(main), np.nan)
    sub_response, sub_ttft_p50, sub_tpot_p50 = None, nan, nan
    if len(res) > 1:
        s = res[1]
        sub_response = response_s(s)
        s_own = np.nan_to_num(s.get("own_prefill_alone_s", s["own_prefill_s"]), nan=0.0)
        q_sub = t_sub.quantile_ratio(s["hit"])
        sub_ttft_p50 = _ttft_percentiles(s["ttft_s"], s_own, q_sub, s, t_sub)[0]
        sub_tpot_p50 = s.get("tpot_mid_s", s["tpot_s"])
    ttft, tpot = m["ttft_s"], m["tpot_s"]
    tpot_p50 = m.get("tpot_mid_s", tpot)  # a request at the median context
    stable = np.isfinite(ttft) & np.isfinite(tpot) & (m["requests_per_s"] > 0)
    reason = np.where((reason == "") & ~stable, "overloaded: no steady state at this load", reason)
    q = t_main.quantile_ratio(m["hit"])
    own = np.nan_to_num(m.get("own_prefill_alone_s", m["own_prefill_s"]), nan=0.0)
    ttft_pct = _ttft_percentiles(ttft, own, q, m, t_main)
    per_s = usd / 3600.0
    sessions_per_s = reqs / max(load.requests_per_session_mean, 1e-9)
    shares_pf, shares_load = _input_shares(main, m)
    uncached = np.maximum(in_tok - cached, 1e-12)
    res = {
        "ttft_p50_s": ttft_pct[0],
        "ttft_p90_s": ttft_pct[1],
        "ttft_p99_s": ttft_pct[2],
        "tpot_p50_ms": tpot_p50 * 1e3,
        "tpot_p90_ms": m["tpot_hi_s"] * 1e3,
        "tokens_per_s_per_user": 1.0 / tpot_p50,
        "output_tokens_per_s": out_tok,
        "tokens_per_s_per_gpu": out_tok / chips,
        "input_tokens_per_s": in_tok,
        "cache_hit_ratio": cached / np.maximum(in_tok, 1e-12),
        "cache_hit_ratio_hbm": cached_hbm / np.maximum(in_tok, 1e-12),
        "cache_hit_ratio_host": cached_host / np.maximum(in_tok, 1e-12),
        "cache_hit_ratio_storage": cached_sto / np.maximum(in_tok, 1e-12),
        "cache_hit_ratio_shared": cached_sh / np.maximum(in_tok, 1e-12),
        "session_time_p50_s": load.session_time_p50_s(response_s(m), sub_response),
        "subagent_ttft_p50_s": sub_ttft_p50,
        "subagent_tpot_p50_ms": sub_tpot_p50 * 1e3,
        "sessions_per_hour": sessions_per_s * 3600.0,
        "chips": chips,
        "usd_per_hour": usd,
        "usd_per_mtok_output": per_s / np.maximum(out_tok, 1e-12) * 1e6,
        # input pricing by time share of the main pools: uncached tokens pay for prefill
        # compute, cached ones for loading host-memory hits (device-memory hits only hold
        # memory, which the output price already carries)
        "usd_per_mtok_input_uncached": per_s * shares_pf / uncached * 1e6,
        "usd_per_mtok_input_cached": per_s * shares_load / np.maximum(cached, 1e-12) * 1e6,
        "usd_per_session": per_s / np.maximum(sessions_per_s, 1e-12),
        "power_kw": power / 1e3,
        "joules_per_output_token": power / np.maximum(out_tok, 1e-12),
        "utilization": busy / np.maximum(chips, 1.0),
        # the main model's mean response beyond the trace's server time, at which its
        # hits are read (`evaluate_delay`; 0: as fast as the trace's server, or faster)
        "response_delay_s": m.get("delay_s", np.zeros(len(main))),
        # the main model's KV capacity in device memory: a worker of the pool that holds
        # the decoding sequences (agg or decode) and of the pool that prefills and keeps
        # the prefix cache (agg or prefill), at the engine's memory setting
        "kv_tokens_per_worker": m["kv_tokens_per_worker"],
        "prefill_kv_tokens_per_worker": m["prefill_kv_tokens_per_worker"],
    }
    feasible = reason == ""
    for k in res:
        if k != "chips":
            res[k] = np.where(feasible, res[k], np.nan)
    res["feasible"] = feasible
    res["reason"] = reason
    return res


def _input_shares(c: Candidates, m: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Fractions of the cost spent on prefill compute and on host KV loads."""
    agg = c.mode == "agg"
    kv_chips = c.workers * c.tp * c.dp * c.pp
    pre_chips = np.where(agg, kv_chips, c.p_workers * c.p_tp * c.p_dp * c.p_pp)
    ranks = np.where(agg, c.workers * c.dp, c.p_workers * c.p_dp)
    frac = pre_chips / c.chips
    load = np.minimum(m["requests_per_s"] / ranks * np.nan_to_num(m["kv_load_s"]), 1.0)
    return np.minimum(np.nan_to_num(m["prefill_utilization"]), 1.0) * frac, load * frac


def evaluate(
    deployments: Sequence[Deployment],
    load: AgentLoad,
    concurrent_sessions: float,
    calib: Calibration | None = None,
) -> dict[str, np.ndarray]:
    """Metrics arrays (one entry per deployment) plus ``feasible`` and ``reason``."""
    n = len(deployments)
    out: dict[str, np.ndarray] = {k: np.full(n, np.nan) for k in METRICS}
    out["feasible"] = np.zeros(n, dtype=bool)
    out["reason"] = np.full(n, "", dtype=object)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for k, d in enumerate(deployments):
        if d.mode == "afd":
            out["reason"][k] = "afd deployments are not in the agent evaluator yet (estimate)"
            continue
        key = (d.model, d.subagents.model if d.subagents else "", d.engine)
        groups.setdefault(key, []).append(k)
    for (_, sub_model, _), idx in groups.items():
        deps = [deployments[k] for k in idx]
        try:
            main = from_deployments(deps)
            sub = from_deployments(deps, sub=True) if sub_model else None
        except CodesignError as exc:  # e.g. an unknown system: find whose, one by one
            if len(idx) == 1:
                out["reason"][idx[0]] = str(exc)
                continue
            for k in idx:
                part = evaluate([deployments[k]], load, concurrent_sessions, calib)
                for key, v in part.items():
                    out[key][k] = v[0]
            continue
        try:
            res = evaluate_arrays(main, load, concurrent_sessions, calib, sub)
        except CodesignError as exc:
            out["reason"][idx] = str(exc)
            continue
        for key, v in res.items():
            out[key][idx] = v
    return out
