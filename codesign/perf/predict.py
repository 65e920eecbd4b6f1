"""Predict measured serving rows (``SiliconRows``): TTFT and TPOT per row.

Rows are grouped by model (one profile per model). ``prepare`` (``perf.prepare``) does
everything that does not depend on the calibration (models, hardware lookups, byte sizes)
once, so calibration fits re-evaluate thousands of rows in milliseconds.
"""

from __future__ import annotations

import numpy as np

from codesign.perf import unrecorded
from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.collectives import kv_paths, kv_transfer_s
from codesign.perf.engine import (
    DEFAULT_CHUNK_TOKENS,
    efficiency,
    prefill_work_s,
    sync_factor,
    ttft_overhead_s,
)
from codesign.perf.group import (
    Group,
    _f,
    make_layout,
    make_load,
    row_precisions,
    stored_kv_precision,
    take,
)
from codesign.perf.group_decode import decode_time, own_ctx_deltas, per_seq_cost, tokens_per_iter
from codesign.perf.hardware import HwVec
from codesign.perf.kv_budget import RUNTIME_RESERVE_FRACTION
from codesign.perf.memory import (
    MemoryUse,
    holds_one_sequence,
    kv_slots_per_rank,
    memory_use,
)
from codesign.perf.prepare import Prepared, prepare
from codesign.perf.profile import ModelProfile
from codesign.perf.step import Bytes, Layout, step_time
from codesign.serving.closed_loop import aggregated, disaggregated
from codesign.serving.open_loop import aggregated_open, disaggregated_open
from codesign.validation.silicon import SiliconRows

__all__ = [
    "Group",
    "Prepared",
    "evaluate",
    "evaluate_group",
    "make_layout",
    "make_load",
    "predict_rows",
    "prepare",
    "row_precisions",
    "stored_kv_precision",
    "take",
]


Outputs = dict[str, np.ndarray]


def _agg(g: Group, calib: Calibration, i: np.ndarray) -> Outputs:
    r, prof = g.rows.subset(i), g.prof
    hw, nb = take(g.hw, i), take(g.nb, i)
    eff = efficiency(calib, hw, list(r.backend), g.eager_at(i))
    isl, osl = _f(r.isl), _f(r.osl)
    cached = np.floor(isl * g.hit(i))
    new = np.maximum(isl - cached, 1.0)
    ctx = isl + osl / 2.0
    lay = make_layout(r.tp, r.dp, r.moe_tp, r.moe_ep, r.pp, prof.is_moe)
    # clients per attention-DP rank: the recorded client concurrency is the ground truth
    # (batch_size disagrees with it on a few rows where attention-DP went unrecorded)
    c = g.concurrency(i, r) / lay.dp
    use = memory_use(
        prof, lay, nb, hw.mem_bytes, g.kv_elems_per_token, r.backend, **g.memory_settings(i)
    )
    state = use.state_tokens_per_seq
    slots = kv_slots_per_rank(use.kv_tokens_per_worker, lay.dp, r.backend, isl, osl, state)
    if g.max_batch is not None:  # the engine's batch limit binds before the cache does
        cap = np.asarray(g.max_batch, dtype=np.float64)[i]
        slots = np.where(cap > 0, np.minimum(slots, cap), slots)
    fits = use.fits & holds_one_sequence(use.kv_tokens_per_worker, lay.dp, isl + osl, state)
    if g.clients is None:
        c = unrecorded.replica_clients(c, _f(r.batch), slots)
    active = np.maximum(np.minimum(c, slots), 1.0)  # a decoding token's own sequence
    t_dec = decode_time(g, i, hw, lay, active, ctx, nb, eff)
    host_kv, storage_kv, shared_kv = cached * g.host(i), cached * g.storage(i), cached * g.shared(i)
    # the prompt in equal chunks; chunk k attends the cached prefix and the k chunks before
    # it, linear in that offset, so the mean offset times the chunks is the exact total
    # (the host- and storage-tier prefix is loaded once); the prefix is the one that gives
    # the mean prompt's pairs where prompts differ (``Group.attention_prefix``)
    chunks = np.ceil(new / DEFAULT_CHUNK_TOKENS)
    chunk = new / chunks
    attn_prefix = g.attention_prefix(i, cached, new)
    before = attn_prefix + (chunks - 1.0) / 2.0 * chunk
    loads = (host_kv / chunks, storage_kv / chunks, shared_kv / chunks)
    load = make_load(active, ctx, chunk, before, 1, *loads)
    own = step_time(prof, hw, lay, load, nb, eff)
    pf_load = make_load(0, 0, new, attn_prefix, 1, host_kv, storage_kv, shared_kv)
    pf = step_time(prof, hw, lay, pf_load, nb, eff)
    handling = new * calib.ttft_per_input_token_us * 1e-6
    typical = pf["total"]  # the mean prompt's prefill, where prompts differ (``attn_prefix``)
    if g.prefill_pairs is not None:
        typ_load = make_load(0, 0, new, cached, 1, host_kv, storage_kv, shared_kv)
        typical = step_time(prof, hw, lay, typ_load, nb, eff)["total"]
    # the same decode step without the chunk (t_dec is per token with speculative decoding)
    dec_only = t_dec
    if g.spec_k is not None:
        dec_only = step_time(prof, hw, lay, make_load(active, ctx, 0, 0, 0), nb, eff)["total"]
    work = prefill_work_s(r.backend, own["total"], dec_only, chunks, pf)
    if g.arrival_rate is not None:
        one = np.ones_like(slots)
        out = aggregated_open(
            g.arrival_rate[i] / lay.dp,
            osl,
            decode_time(g, i, hw, lay, one, ctx, nb, eff),
            decode_time(g, i, hw, lay, slots, ctx, nb, eff),
            one,
            slots,
            own["total"] * chunks,
            work,
            ttft_overhead_s(calib, list(r.backend), prof.units, new),
            g.queue(i, calib.queue_factor),
            lay.dp,
            g.adp_balance(i, r, lay.dp),
            tokens_per_iter(g, i),
        )
        return {
            "ttft_s": out["ttft_s"],
            "tpot_s": out["tpot_s"],
            "requests_per_s": g.arrival_rate[i],
            "gpus": lay.gpus,
            "weights_bytes_per_gpu": use.weights_bytes_per_gpu,
            "kv_tokens_per_worker": use.kv_tokens_per_worker,
            "fits": fits & (out["decode_batch"] <= slots),
            "decode_batch_per_rank": out["decode_batch"],
            "kv_slots_per_rank": slots,
        }
    out = aggregated(
        c,
        osl,
        t_dec,
        own["total"] * chunks,
        work,
        ttft_overhead_s(calib, list(r.backend), prof.units, new),
        g.queue(i, calib.queue_factor),
        sync_factor(calib, list(r.backend)),
        slots,
        g.think(i),
        per_seq_cost(g, i, hw, lay, active, ctx, nb, eff, t_dec),
        lay.dp,
        g.adp_balance(i, r, lay.dp),
        tokens_per_iter(g, i),
    )
    # each of the request's steps carries its own sequence once (the prefill chunks in
    # them do not grow with its context)
    hi, mid = own_ctx_deltas(g, i, hw, lay, nb, eff, ctx)
    return {
        "own_prefill_s": out["own_prefill_s"],
        # the part of TTFT that scales with the prompt's new tokens: its prefill alone (the
        # decodes its chunks carry do not) and the request handling per uncached token;
        # what a TTFT percentile rescales
        "own_prefill_alone_s": pf["total"] + handling,
        # the mean prompt's (a typical request's context; what the quantiles scale)
        "own_prefill_typical_s": typical + handling,
        "tpot_hi_s": np.maximum(out["tpot_s"] + hi, 1e-9),
        "tpot_mid_s": np.maximum(out["tpot_s"] + mid, 1e-9),
        "prefill_utilization": out["prefill_utilization"],
        "prefill_wait_probability": out["prefill_wait_probability"],
        "slot_wait_s": out["slot_wait_s"],
        "queue_wait_s": out["queue_wait_s"],
        "adp_wait_s": out["adp_wait_s"],
        "adp_cycle_s": out["adp_cycle_s"],
        "adp_fill_s": out["adp_fill_s"],
        "kv_load_s": pf["kv_load"],
        "ttft_s": out["ttft_s"],
        "tpot_s": out["tpot_s"],
        "requests_per_s": out["requests_per_s"] * lay.dp,
        "gpus": lay.gpus,
        "weights_bytes_per_gpu": use.weights_bytes_per_gpu,
        "kv_tokens_per_worker": use.kv_tokens_per_worker,
        "fits": fits,
        "decode_batch_per_rank": out["decode_batch"],
        "kv_slots_per_rank": slots,
    }


def _disagg(g: Group, calib: Calibration, i: np.ndarray) -> Outputs:
    r, prof = g.rows.subset(i), g.prof
    hw, nb = take(g.hw, i), take(g.nb, i)
    hw_d = take(g.hw_decode, i) if g.hw_decode is not None else hw
    eff = efficiency(calib, hw, list(r.backend), g.eager_at(i))
    eff_d = (
        efficiency(calib, hw_d, list(r.backend), g.eager_at(i)) if g.hw_decode is not None else eff
    )
    isl, osl, conc = _f(r.isl), _f(r.osl), g.concurrency(i, r)
    cached = np.floor(isl * g.hit(i))
    new = np.maximum(isl - cached, 1.0)
    p_lay, d_lay = disagg_layouts(g, r, hw, hw_d, nb)
    # Rows that do not record worker counts get the layout such benchmarks ran
    # (``unrecorded``): decode workers for a typical per-rank batch (and every client's
    # KV), prefill workers that keep up with the unqueued request rate.
    need = conc * (isl + osl)  # benchmarks size decode pools for every client's full KV
    use_d = memory_use(
        prof, d_lay, nb, hw_d.mem_bytes, g.kv_elems_per_token, r.backend, **g.memory_settings(i)
    )
    cap_d = use_d.kv_tokens_per_worker
    kv_fit = np.maximum(1.0, np.ceil(need / np.maximum(cap_d, 1.0)))
    d_w = np.where(
        _f(r.d_workers) > 0, _f(r.d_workers), unrecorded.decode_workers(conc, d_lay.dp, kv_fit)
    )
    b_p = np.maximum(_f(r.p_batch), 1)  # prefill requests per attention-DP rank
    ranks_d = d_w * d_lay.dp
    given = _f(r.d_batch) > 0
    b_d = np.where(given, _f(r.d_batch), np.ceil(conc / ranks_d))
    # sequences a decode rank's KV holds at the engine's admission: a decode worker runs
    # no more than that (the others wait for a slot), whatever batch it is allowed
    state_d = use_d.state_tokens_per_seq
    kv_slots = kv_slots_per_rank(cap_d, d_lay.dp, r.backend, isl, osl, state_d)
    active = np.minimum(np.minimum(b_d, np.ceil(conc / ranks_d)), kv_slots)
    slots = np.minimum(np.where(given, ranks_d * b_d, conc), ranks_d * kv_slots)
    host_kv, storage_kv = b_p * cached * g.host(i), b_p * cached * g.storage(i)
    shared_kv = b_p * cached * g.shared(i)
    attn_prefix = g.attention_prefix(i, cached, new)
    pf_load = make_load(0, 0, b_p * new, attn_prefix, b_p, host_kv, storage_kv, shared_kv)
    pf = step_time(prof, hw, p_lay, pf_load, nb, eff)
    typical = pf["total"] / b_p  # the mean prompt's share, where prompts differ
    if g.prefill_pairs is not None:
        typ_load = make_load(0, 0, b_p * new, cached, b_p, host_kv, storage_kv, shared_kv)
        typical = step_time(prof, hw, p_lay, typ_load, nb, eff)["total"] / b_p
    t_dec = decode_time(g, i, hw_d, d_lay, active, isl + osl / 2.0, nb, eff_d)
    p_guess = unrecorded.prefill_workers(conc, osl, pf["total"], t_dec, b_p * p_lay.dp)
    p_w = np.where(_f(r.p_workers) > 0, _f(r.p_workers), p_guess)
    servers = p_w * p_lay.dp
    capacity = servers * b_p / pf["total"]
    gpus = p_w * p_lay.gpus + d_w * d_lay.gpus
    # the pools share a scale-up domain where they are one system and fit in it
    same_domain = (gpus <= hw.su_domain) & ~g.decode_differs(i)
    fits = _disagg_fits(g, i, r, hw, nb, p_lay, use_d, d_lay, b_p, isl, osl)
    link = np.where(same_domain, hw.su_bw, np.minimum(hw.so_bw, hw_d.so_bw))
    kv_s = kv_transfer_s(
        isl * g.kv_elems_per_token * nb.kv_store,  # the cache's entries move as stored
        kv_paths(prof.kv_split(p_lay.tp), p_lay.pp),
        kv_paths(prof.kv_split(d_lay.tp), d_lay.pp),
        link,
        np.where(same_domain, hw.su_lat, np.maximum(hw.so_lat, hw_d.so_lat)),
    )
    if g.arrival_rate is not None:
        one = np.ones_like(b_d)
        big = np.maximum(kv_slots, 2.0)
        out = disaggregated_open(
            g.arrival_rate[i],
            osl,
            ranks_d,
            decode_time(g, i, hw_d, d_lay, one, isl + osl / 2.0, nb, eff_d),
            decode_time(g, i, hw_d, d_lay, big, isl + osl / 2.0, nb, eff_d),
            one,
            big,
            pf["total"],
            capacity,
            kv_s,
            ttft_overhead_s(calib, list(r.backend), prof.units, new),
            g.queue(i, calib.queue_factor),
            servers,
        )
        return {
            "ttft_s": out["ttft_s"],
            "tpot_s": out["tpot_s"],
            "kv_transfer_s": kv_s + 0 * out["ttft_s"],
            "requests_per_s": g.arrival_rate[i],
            "gpus": gpus,
            "prefill_gpus": p_w * p_lay.gpus,
            "decode_gpus": d_w * d_lay.gpus,
            "weights_bytes_per_gpu": use_d.weights_bytes_per_gpu,
            "kv_tokens_per_worker": use_d.kv_tokens_per_worker,
            "fits": fits & (out["decode_batch"] <= kv_slots),
            "decode_batch_per_rank": out["decode_batch"],
            "kv_slots_per_rank": kv_slots,
        }
    out = disaggregated(
        conc,
        osl,
        t_dec,
        pf["total"],
        capacity,
        slots,
        kv_s,
        ttft_overhead_s(calib, list(r.backend), prof.units, new),
        g.queue(i, calib.queue_factor),
        sync_factor(calib, list(r.backend)),
        servers,
        g.think(i),
        # with client think time (agent sessions) far fewer clients decode than are
        # connected; fixed-concurrency benchmarks size the decode batch to all clients
        # (their recorded batch sizes times ranks equal the concurrency), so they keep it
        None
        if g.think_s is None
        else per_seq_cost(g, i, hw_d, d_lay, active, isl + osl / 2.0, nb, eff_d, t_dec),
        ranks_d,
        active,
    )
    hi, mid = own_ctx_deltas(g, i, hw_d, d_lay, nb, eff_d, isl + osl / 2.0)
    return {
        "own_prefill_s": out["own_prefill_s"],
        # what grows with the request's new tokens: its share of the prefill batch and the
        # request handling per uncached token (what a TTFT percentile rescales)
        "own_prefill_alone_s": pf["total"] / b_p + new * calib.ttft_per_input_token_us * 1e-6,
        "own_prefill_typical_s": typical + new * calib.ttft_per_input_token_us * 1e-6,
        "tpot_hi_s": np.maximum(out["tpot_s"] + hi, 1e-9),
        "tpot_mid_s": np.maximum(out["tpot_s"] + mid, 1e-9),
        "prefill_utilization": out["prefill_utilization"],
        "prefill_wait_probability": out["prefill_wait_probability"],
        "slot_wait_s": out["slot_wait_s"],
        "queue_wait_s": out["queue_wait_s"],
        "kv_load_s": pf["kv_load"] / b_p,
        "kv_transfer_s": kv_s + 0 * out["ttft_s"],
        "ttft_s": out["ttft_s"],
        "tpot_s": out["tpot_s"],
        "requests_per_s": out["requests_per_s"],
        "gpus": gpus,
        "prefill_gpus": p_w * p_lay.gpus,
        "decode_gpus": d_w * d_lay.gpus,
        "weights_bytes_per_gpu": use_d.weights_bytes_per_gpu,
        "kv_tokens_per_worker": use_d.kv_tokens_per_worker,
        "fits": fits,
        "decode_batch_per_rank": active,
        "kv_slots_per_rank": kv_slots,
    }


def disagg_layouts(
    g: Group, r: SiliconRows, hw: HwVec, hw_d: HwVec, nb: Bytes
) -> tuple[Layout, Layout]:
    """(prefill, decode) worker layouts of disagg rows ``r`` of ``g``, each widened where
    the recorded one cannot hold the weights."""
    prof = g.prof
    p_lay = make_layout(r.p_tp, r.p_dp, r.p_moe_tp, r.p_moe_ep, r.p_pp, prof.is_moe)
    d_lay = make_layout(r.d_tp, r.d_dp, r.d_moe_tp, r.d_moe_ep, r.d_pp, prof.is_moe)
    return (
        _at_least_fits(prof, p_lay, nb, hw, g.kv_elems_per_token, r.backend),
        _at_least_fits(prof, d_lay, nb, hw_d, g.kv_elems_per_token, r.backend),
    )


def _disagg_fits(
    g: Group,
    i: np.ndarray,
    r: SiliconRows,
    hw: HwVec,
    nb: Bytes,
    p_lay: Layout,
    use_d: MemoryUse,
    d_lay: Layout,
    b_p: np.ndarray,
    isl: np.ndarray,
    osl: np.ndarray,
) -> np.ndarray:
    """A disaggregated deployment is feasible as asked when both pools hold their weights
    in the layouts given (``disagg_layouts`` widens one that cannot, to predict an
    inconsistent measured row; an estimate must say it does not fit), a decode rank
    holds one whole sequence and a prefill rank its batch of prompts."""
    prof = g.prof
    p0 = make_layout(r.p_tp, r.p_dp, r.p_moe_tp, r.p_moe_ep, r.p_pp, prof.is_moe)
    d0 = make_layout(r.d_tp, r.d_dp, r.d_moe_tp, r.d_moe_ep, r.d_pp, prof.is_moe)
    as_given = (p_lay.tp == p0.tp) & (d_lay.tp == d0.tp)
    use_p = memory_use(
        prof,
        p_lay,
        nb,
        hw.mem_bytes,
        g.kv_elems_per_token,
        r.backend,
        **g.memory_settings(i, prefill=True),
    )
    prompts = holds_one_sequence(
        use_p.kv_tokens_per_worker, p_lay.dp, b_p * isl, b_p * use_p.state_tokens_per_seq
    )
    decode = holds_one_sequence(
        use_d.kv_tokens_per_worker, d_lay.dp, isl + osl, use_d.state_tokens_per_seq
    )
    return as_given & use_p.fits & use_d.fits & prompts & decode


def _at_least_fits(
    prof: ModelProfile, lay: Layout, nb: Bytes, hw: HwVec, kv_elems: float, engines: np.ndarray
) -> Layout:
    """Widen tp where a recorded layout cannot even hold the weights (inconsistent rows)."""
    use = memory_use(prof, lay, nb, hw.mem_bytes, kv_elems, engines)
    usable = hw.mem_bytes * (1.0 - RUNTIME_RESERVE_FRACTION)
    k = np.where(use.fits, 1.0, 2.0 ** np.ceil(np.log2(use.weights_bytes_per_gpu / usable + 0.5)))
    return Layout(tp=lay.tp * k, dp=lay.dp, moe_tp=lay.moe_tp * k, moe_ep=lay.moe_ep, pp=lay.pp)


def evaluate_group(g: Group, calib: Calibration) -> Outputs:
    """All outputs for one group's rows (agg and disagg rows together)."""
    n = len(g.rows)
    out: Outputs = {}
    agg = g.rows.mode == "agg"
    for mask, fn in ((agg, _agg), (~agg, _disagg)):
        if not mask.any():
            continue
        i = np.flatnonzero(mask)
        for key, val in fn(g, calib, i).items():
            if key not in out:
                out[key] = np.full(n, np.nan)
            out[key][i] = val
    return out


def evaluate(prep: Prepared, calib: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """(ttft_ms, tpot_ms) for prepared rows; NaN where not predictable."""
    ttft, tpot = np.full(prep.n, np.nan), np.full(prep.n, np.nan)
    for g in prep.groups:
        out = evaluate_group(g, calib)
        ttft[g.index], tpot[g.index] = out["ttft_s"] * 1e3, out["tpot_s"] * 1e3
    return ttft, tpot


def predict_rows(
    rows: SiliconRows, calib: Calibration | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ttft_ms, tpot_ms, reasons) for every row; reason '' when predicted."""
    prep = prepare(rows)
    ttft, tpot = evaluate(prep, calib or load_calibration())
    reasons = prep.reasons.copy()
    bad = ~(np.isfinite(ttft) & np.isfinite(tpot)) & (reasons == "")
    reasons[bad] = "model produced no finite prediction"
    return ttft, tpot, reasons
