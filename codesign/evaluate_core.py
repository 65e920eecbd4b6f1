"""The vectorised core of the agent evaluator: `Candidates` of one model -> the perf
model's inputs -> per-candidate outputs, with no Python loop per candidate.

The hit ratio comes from the curve of the requests the part serves (one tier, or all tiers
of a merged load) at the KV capacity of a worker that prefills (device memory left after
the weights, plus the host tier), shared by the sessions the router sends to that worker:
a worker's share under session-affine or KV-aware routing; all sessions under round robin,
where a request finds what the session's last visit to that worker cached, the context
grown since then missing (`HitCurve.round_robin_hit_ratio`).

Disaggregated parts keep the prefix cache on the prefill workers, as the engines do: the
router picks a prefill worker by its cached prefix (Dynamo's prefill router, SGLang's
prefill server's radix cache, TRT-LLM's context servers with block reuse), that worker
computes the uncached tokens, and the whole context's KV moves to a decode worker chosen
by load, which looks no prefix up. So the cache's capacity and the host and NVMe tiers are
the prefill workers', and the sessions share the prefill workers.
"""

from __future__ import annotations

import numpy as np

from codesign.candidates import Candidates
from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import ENGINES, Calibration
from codesign.perf.engine import byte_sizes, per_key
from codesign.perf.hardware import HwVec, hw_vectors_indexed, with_shared_store
from codesign.perf.memory import memory_use, weights_misfit
from codesign.perf.predict import Group, evaluate_group, make_layout, row_precisions
from codesign.perf.profile import ModelProfile, build_profile
from codesign.validation.silicon import INT_FIELDS, STR_FIELDS, SiliconRows
from codesign.workload.agent_load import AgentLoad, TierLoad


def _resolve(values: np.ndarray, fn) -> np.ndarray:
    uniq, inv = np.unique(values.astype(str), return_inverse=True)
    return np.array([fn(str(u)) for u in uniq], dtype=object)[inv]


def _precisions(c: Candidates, prof: ModelProfile) -> tuple[np.ndarray, np.ndarray]:
    gemm = _resolve(c.gemm, lambda g: row_precisions(g, "", "", "", prof)[0])
    moe = np.where(c.moe == "", np.where(c.gemm == "", prof.native_moe, gemm), c.moe)
    moe = _resolve(moe.astype(object), lambda m: row_precisions(m, m, "", "", prof)[1])
    return gemm, moe


def _moe_split(
    tp: np.ndarray, dp: np.ndarray, ep: np.ndarray, is_moe: bool
) -> tuple[np.ndarray, np.ndarray]:
    if not is_moe:
        return np.zeros_like(tp), np.zeros_like(tp)
    ep = np.where(ep > 0, ep, tp * dp)
    return np.maximum(tp * dp // np.maximum(ep, 1), 1), ep


def pair_tokens(prof: ModelProfile, hw: HwVec, calib: Calibration, tier: TierLoad) -> np.ndarray:
    """The prefill time of one causal attention pair in token-times of the linear layers
    (per candidate): attention FLOPs per pair at the chip's attention rate over the
    weights' FLOPs per token at its GEMM rate, both at their calibrated peak efficiency
    (a long prefill runs both near it). Qwen3-32B FP8 on an H100: 2.1 MFLOP per pair at
    the BF16 attention rate against 62 GFLOP per token at the FP8 GEMM rate, 7.8e-5, so
    900K tokens that miss cost 4e11 pairs = 32M token-times, 35x their tokens."""
    ctx = max(tier.context_mean, 1.0)
    per_pair = float(prof.prefill_attn_flops(np.array(1.0), np.array(ctx))) / (ctx + 1.0)
    per_token = 2.0 * (prof.p_every_token + prof.top_k * prof.p_expert * prof.moe_layers)
    per_token += prof.recurrent_flops_per_token
    gemm = per_key(hw.gemm_class, calib.gemm_eff_max.__getitem__)
    t_pair = per_pair / (hw.peak_attn * calib.attn_eff)
    t_token = per_token / (hw.peak_gemm * gemm)
    return t_pair / np.maximum(t_token, 1e-300)


def _reasons(c: Candidates, prof: ModelProfile) -> np.ndarray:
    r = np.full(len(c), "", dtype=object)
    for tp, ep, role in ((c.tp, c.ep, "decode/agg"), (c.p_tp, c.p_ep, "prefill")):
        if prof.num_heads:
            bad = (prof.num_heads % tp) != 0
            r[bad & (r == "")] = f"{role} pool: tp does not divide the {prof.num_heads} heads"
        if prof.is_moe:
            bad = (ep > 0) & ((prof.num_experts % np.maximum(ep, 1)) != 0)
            r[bad & (r == "")] = f"{role} pool: ep does not divide the {prof.num_experts} experts"
        else:
            r[(ep > 0) & (r == "")] = f"{role} pool: ep set but the model has no experts"
    return r


def evaluate_candidates(
    c: Candidates,
    load: AgentLoad,
    tier: TierLoad,
    clients: float | np.ndarray,
    calib: Calibration,
    sessions: float | np.ndarray | None = None,
    delay_s: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-candidate outputs for one model part serving ``clients`` closed-loop clients (a
    number, or one per candidate) for ``sessions`` sessions (default: ``clients``), whose
    prefixes its caches hold; ``delay_s``: seconds each response takes beyond the trace's
    server time, which stretch the reuse windows (`kvcache.delay`; default none)."""
    arch = load_model(c.model)
    prof = build_profile(arch)
    kv_elems = float(kv_elements_per_token(arch))
    n = len(c)
    gemm, moe = _precisions(c, prof)
    agg = c.mode == "agg"
    ints = {k: np.zeros(n, dtype=np.int64) for k in INT_FIELDS}
    strs = {k: np.full(n, "", dtype=object) for k in STR_FIELDS}
    strs["backend"], strs["mode"] = c.engine, c.mode
    strs["model"] = np.full(n, c.model, dtype=object)
    ints["isl"][:] = max(round(tier.context_mean), 1)
    ints["osl"][:] = max(round(tier.output_mean), 1)
    mtp, mep = _moe_split(c.tp, c.dp, c.ep, prof.is_moe)
    ptp, pep = _moe_split(c.p_tp, c.p_dp, c.p_ep, prof.is_moe)
    ints["concurrency"] = np.maximum(
        np.where(agg, np.round(clients / c.workers), np.round(clients)), 1
    ).astype(np.int64)
    for f, v in (
        ("batch", 1),
        ("tp", c.tp),
        ("pp", c.pp),
        ("dp", c.dp),
        ("moe_tp", mtp),
        ("moe_ep", mep),
    ):
        ints[f] = np.where(agg, v, 0)
    for f, v in (
        ("batch", 1),
        ("workers", c.p_workers),
        ("tp", c.p_tp),
        ("pp", c.p_pp),
        ("dp", c.p_dp),
        ("moe_tp", ptp),
        ("moe_ep", pep),
    ):
        ints[f"p_{f}"] = np.where(agg, 0, v)
    for f, v in (
        ("batch", c.max_batch),
        ("workers", c.workers),
        ("tp", c.tp),
        ("pp", c.pp),
        ("dp", c.dp),
        ("moe_tp", mtp),
        ("moe_ep", mep),
    ):
        ints[f"d_{f}"] = np.where(agg, 0, v)
    rows = SiliconRows(**ints, **strs, ttft_ms=np.full(n, np.nan), tpot_ms=np.full(n, np.nan))
    hw_p = hw_vectors_indexed(c.systems, c.sys_p, gemm, moe)
    hw_d = hw_vectors_indexed(c.systems, c.sys_d, gemm, moe)
    nb = byte_sizes(list(gemm), list(moe), list(c.kv))
    lay = make_layout(c.tp, c.dp, mtp, mep, c.pp, prof.is_moe)
    draft = c.spec_k > 0  # SGLang reserves memory for a draft model (perf.kv_budget)
    use = memory_use(prof, lay, nb, hw_d.mem_bytes, kv_elems, c.engine, c.mem_fraction, draft)
    reasons = _reasons(c, prof)
    for j in np.flatnonzero((~use.fits) & (reasons == "")):
        reasons[j] = weights_misfit(use, hw_d.mem_bytes, str(c.engine[j]), j)
    room = use.kv_tokens_per_worker < rows.isl + rows.osl
    reasons[room & (reasons == "")] = "no room for the KV cache of one mean request"
    # the prefix cache and its tiers live on the workers that prefill (module docstring)
    lay_c = make_layout(c.p_tp, c.p_dp, ptp, pep, c.p_pp, prof.is_moe)
    use_c = memory_use(prof, lay_c, nb, hw_p.mem_bytes, kv_elems, c.engine, c.p_mem_fraction, draft)
    pool = np.where(agg, "", "prefill pool: ")
    host_cap_gb = np.array([s.host_kv_gb_per_chip for s in c.systems])[c.sys_p] * lay_c.gpus
    over = c.host_gb > host_cap_gb + 1e-6
    for j in np.flatnonzero(over & (reasons == "")):
        reasons[j] = (
            f"{pool[j]}kv_tiers.host_gb_per_worker={c.host_gb[j]:g} exceeds the "
            f"{host_cap_gb[j]:.0f} GB of host memory a worker has on "
            f"{c.systems[c.sys_p[j]].name}"
        )
    storage_gb = np.zeros(n) if c.storage_gb is None else np.asarray(c.storage_gb, np.float64)
    sto_cap_gb = np.array([s.storage_kv_gb_per_chip for s in c.systems])[c.sys_p] * lay_c.gpus
    for j in np.flatnonzero((storage_gb > sto_cap_gb + 1e-6) & (reasons == "")):
        reasons[j] = (
            f"{pool[j]}kv_tiers.storage_gb_per_worker={storage_gb[j]:g} exceeds the "
            f"{sto_cap_gb[j]:.0f} GB of NVMe a worker has on {c.systems[c.sys_p[j]].name}"
        )
    kv_bpe = byte_sizes(list(c.kv), list(c.kv), list(c.kv)).kv
    per_token = np.maximum(kv_elems * kv_bpe, 1e-9)
    hbm = np.maximum(use_c.kv_tokens_per_worker, 0).astype(np.float64)
    host_tokens = c.host_gb * 1e9 / per_token
    spc = clients if sessions is None else sessions
    h_hh, h_hbm, a_tot = _hit(tier, hbm, hbm + host_tokens, spc, c, delay_s=delay_s)
    h_tot = h_hh
    if (storage_gb > 0).any():  # tiers in order: blocks the host evicts move to storage
        sto = storage_gb * 1e9 / per_token
        h_sto, _, a_sto = _hit(
            tier, hbm + host_tokens, hbm + host_tokens + sto, spc, c, delay_s=delay_s
        )
        h_tot, a_tot = np.maximum(h_sto, h_hh), np.maximum(a_sto, a_tot)
    h_local = h_tot
    shared_tb = np.zeros(n) if c.shared_tb is None else np.asarray(c.shared_tb, np.float64)
    shared = shared_tb > 0
    if shared.any():  # one store for every worker's sessions, written through
        h_sh, a_sh = _shared_hit(tier, shared_tb * 1e12 / per_token, spc, delay_s)
        h_tot, a_tot = np.maximum(h_local, h_sh), np.maximum(a_tot, a_sh)
        read = np.asarray(c.shared_gb_s, np.float64) * 1e9
        hw_p = with_shared_store(hw_p, read, c.prefill_chips)
        hw_d = with_shared_store(hw_d, read, c.prefill_chips)
    host_share = _share(h_hh - h_hbm, h_tot)
    storage_share = _share(h_local - h_hh, h_tot)
    shared_share = _share(h_tot - h_local, h_tot)
    hetero = bool((c.sys_p != c.sys_d).any())
    spec = c.spec_k > 0
    group = Group(
        index=np.arange(n),
        rows=rows,
        prof=prof,
        kv_elems_per_token=kv_elems,
        hw=hw_p,
        nb=nb,
        hw_decode=hw_d if hetero else None,
        decode_system_differs=(c.sys_p != c.sys_d) if hetero else None,
        # an aggregated pool's max_batch caps its running sequences (disagg: ``d_batch``)
        max_batch=np.where(agg, c.max_batch, 0).astype(np.float64),
        prefix_hit=np.minimum(h_tot, 0.999),
        # the exact mean attention work of the uncached tokens: long contexts miss more
        # (the first turn, a compaction, a session evicted in a long gap), so it is far
        # above the mean prompt's (1.6x on 64 fleet sessions at a 0.93 hit ratio)
        prefill_pairs=None if tier.curve is None else tier.curve.prefill_pairs(a_tot),
        host_share=host_share,
        storage_share=storage_share if (storage_gb > 0).any() else None,
        shared_share=shared_share if shared.any() else None,
        spec_k=c.spec_k.astype(np.float64) if spec.any() else None,
        spec_alpha=c.spec_alpha if spec.any() else None,
        think_s=np.full(n, tier.think_mean_s),
        ctx_hi=np.full(n, tier.context_p90),
        ctx_mid=np.full(n, tier.context_p50),
        # sessions arrive like a Poisson stream and prefills are FCFS: M/G/1, whose wait
        # scales with (1 + SCV) / 2 of the service time (a few whole-context prefills
        # among many small ones make it large)
        queue_factor=(1.0 + tier.prefill_scv(h_tot, pair_tokens(prof, hw_p, calib, tier)))
        / 2.0
        * np.ones(n),
        eager=~c.cuda_graphs if not c.cuda_graphs.all() else None,
        # attention-DP balancing only where the deployment turns it on (TRT-LLM's default
        # is off; the measured rows' recipes turned it on)
        adp_balance_iters=np.zeros(n)
        if c.adp_balance_iters is None
        else np.asarray(c.adp_balance_iters, dtype=np.float64),
        mem_fraction=c.mem_fraction,
        p_mem_fraction=c.p_mem_fraction,
        # the rows' concurrency is an integer; sessions per worker and a sub-agent tier's
        # share of the sessions are not
        clients=np.broadcast_to(np.where(agg, clients / c.workers, clients), (n,)).astype(
            np.float64
        ),
    )
    out = evaluate_group(group, _calib_for_agents(calib))
    out["requests_per_s"] = out["requests_per_s"] * np.where(agg, c.workers, 1.0)
    out.update(
        hit=h_tot,
        host_share=host_share,
        storage_share=storage_share,
        shared_share=shared_share,
        isl=rows.isl.astype(float),
        osl=rows.osl.astype(float),
        prefill_kv_tokens_per_worker=hbm,
        reason=reasons,
    )
    return out


def _ideal_hit(tier: TierLoad) -> float:
    """No block hashes (no hit curve): the trace's own reuse at any capacity."""
    return 1.0 - tier.new_ideal_mean / max(tier.context_mean, 1e-9)


def _shared_hit(
    tier: TierLoad,
    cap_tokens: np.ndarray,
    sessions: float | np.ndarray,
    delay_s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Token and attention hit ratios of a KV store shared by all workers: every block any
    worker computes is written through, so the store holds the most recent blocks of all
    the part's sessions (the hit curve at its capacity for all of them, whatever the
    router). A request reads the longer of its local and shared prefixes; the mean of that
    maximum is taken as the larger mean (a slight underestimate where the two differ
    request by request)."""
    n = len(cap_tokens)
    if tier.curve is None:
        return np.full(n, _ideal_hit(tier)), np.zeros(n)
    s = np.maximum(np.asarray(sessions, dtype=np.float64), 1.0) * np.ones(n)
    curve = tier.curve
    attn = curve.hit_ratio(cap_tokens, s, delay_s, attention=True)
    return curve.hit_ratio(cap_tokens, s, delay_s), attn


def _share(part: np.ndarray, total: np.ndarray) -> np.ndarray:
    """A tier's part of the cached tokens (0 where nothing is cached)."""
    return np.where(total > 0, np.clip(part / np.maximum(total, 1e-12), 0, 1), 0.0)


def _calib_for_agents(calib: Calibration) -> Calibration:
    """Agent sessions wait a random tool or human gap before each request, so many
    sessions arrive like a Poisson stream: no benchmark cohort term (the queue factor is
    the group's M/G/1 one)."""
    return calib.model_copy(update={"sync_factor": dict.fromkeys(ENGINES, 0.0)})


def _hit(
    tier: TierLoad,
    cap_hbm: np.ndarray,
    cap_all: np.ndarray,
    sessions: float | np.ndarray,
    c: Candidates,
    delay_s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token hit ratio (device + host, and device only) and attention hit ratio (device +
    host; `HitCurve.hit_ratio(..., attention=True)`, 0 without a curve) per candidate,
    from the curve of the requests the part serves (a merged load's curve covers every
    tier: main and sub-agent requests compete for the same caches).

    The router places requests on the workers that prefill (the agg pool, or the prefill
    pool). Session-affine and KV-aware routers keep a session on one worker: its cache
    holds the prefixes of its share of the sessions. Round robin sends each request to the
    next worker: every worker's cache holds all sessions' prefixes, and a request hits what
    the session's last visit to that worker cached (`HitCurve.round_robin_hit_ratio`)."""
    n = len(cap_hbm)
    curve = tier.curve
    if curve is None:
        return np.full(n, _ideal_hit(tier)), np.full(n, _ideal_hit(tier)), np.zeros(n)
    workers = c.p_workers
    rr = (c.router == 0) & (workers > 1)
    spc = np.maximum(np.where(rr, sessions, sessions / workers), 1.0) * np.ones(n)
    d = None if delay_s is None else np.broadcast_to(np.asarray(delay_s, np.float64), (n,))
    h_all, h_hbm = curve.hit_ratio(cap_all, spc, d), curve.hit_ratio(cap_hbm, spc, d)
    a_all = curve.hit_ratio(cap_all, spc, d, attention=True)
    if rr.any():
        w = workers[rr].astype(np.float64)
        d_rr = None if d is None else d[rr]
        h_all[rr] = curve.round_robin_hit_ratio(cap_all[rr], spc[rr], w, d_rr)
        h_hbm[rr] = curve.round_robin_hit_ratio(cap_hbm[rr], spc[rr], w, d_rr)
        a_all[rr] = curve.round_robin_hit_ratio(cap_all[rr], spc[rr], w, d_rr, attention=True)
    return h_all, h_hbm, a_all
