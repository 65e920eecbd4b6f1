"""One engine step of one worker, vectorised over candidates.

Each operation group is a roofline, time = max(FLOPs / (peak x compute efficiency),
bytes / (bandwidth x memory efficiency)), summed in order (kernels run one after another):

- dense GEMMs (attention projections, recurrent projections, dense MLP, shared experts,
  router) on the tokens of one attention-DP rank, sharded over tp; the compute efficiency
  rises with the GEMM's M (tokens): eff(M) = eff_max x M / (M + M_half);
- lm_head on the sampled tokens only (decode tokens and the last token of each prefill);
- routed experts as a grouped GEMM: the worker's tokens x top-k assignments spread over the
  EP ranks with the expected max-over-ranks excess (balls into bins); the weights read are
  those of the distinct experts the step touches;
- attention: decode reads the KV cache (GQA heads split over tp, an MLA latent replicated
  on every tp rank); prefill is causal flash attention, compute-bound at an efficiency
  that rises with the keys a query attends, attn x S / (S + S_half);
- communication: tensor-parallel all-reduce (2 per layer) or, with attention-DP, the MoE
  dispatch/combine all-to-all, over the scale-up domain when the worker fits in it, else
  the scale-out NICs;
- element-wise kernels (fused residual add + RMSNorm, replicated on every tp rank; the MLP
  activation over its intermediate): memory-bound passes over the activations;
- fixed costs: per-layer kernel overhead and per-step engine overhead;
- eager steps (no CUDA graph): the host launches every kernel itself, asynchronously, so
  the kernels cannot finish before the host has launched them: the step takes at least
  the engine overhead plus layers x the host launch time per layer (``eager_wait`` is
  what that adds over the GPU time).

All inputs are numpy arrays broadcastable to the number of candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from codesign.perf.collectives import (
    Links,
    all_to_all_s,
    allreduce_s,
    members_per_domain,
    pipeline_hops_s,
)
from codesign.perf.hardware import HwVec
from codesign.perf.profile import ModelProfile


@dataclass(frozen=True)
class Layout:
    """Parallelism of one worker. GPUs per worker = tp x dp x pp (= moe_tp x moe_ep x pp)."""

    tp: np.ndarray
    dp: np.ndarray
    moe_tp: np.ndarray
    moe_ep: np.ndarray
    pp: np.ndarray

    @property
    def gpus(self) -> np.ndarray:
        return np.maximum(self.tp * self.dp, self.moe_tp * self.moe_ep) * self.pp


@dataclass(frozen=True)
class StepLoad:
    """What one attention-DP rank processes in the step."""

    n_dec: np.ndarray  # decode sequences (one token each)
    ctx_dec: np.ndarray  # their mean context (tokens already cached)
    n_pf: np.ndarray  # prefill tokens
    ctx_pf: np.ndarray  # tokens cached before those prefill tokens (per sequence)
    pf_seqs: np.ndarray  # prefill sequences the prefill tokens belong to
    host_kv_tokens: np.ndarray | float = 0.0  # cached tokens loaded from host memory
    storage_kv_tokens: np.ndarray | float = 0.0  # cached tokens loaded from NVMe storage
    shared_kv_tokens: np.ndarray | float = 0.0  # cached tokens read from a shared KV store
    # False: the prefill tokens are speculative drafts verified with their sequence's decode
    # token, whose attention already reads the cached KV once for all of them
    pf_reads_cache: bool = True


@dataclass(frozen=True)
class Efficiency:
    """Calibrated efficiencies and fixed costs, per candidate."""

    gemm_max: np.ndarray
    moe_max: np.ndarray
    m_half: float
    moe_m_half: float
    attn: float
    decode_attn: float
    mem: float
    comm: float
    comm_latency_s: float
    layer_overhead_s: np.ndarray
    step_overhead_s: np.ndarray
    moe_imbalance: float
    moe_layer_overhead_s: float = 0.0  # extra fixed cost of an MoE layer (router, dispatch)
    comm_overlap: float = 0.0  # fraction of in-worker communication hidden under compute
    # host seconds per layer to launch an eagerly run step's kernels (0: the step replays
    # a captured CUDA graph, one launch for all of them)
    eager_host_s: np.ndarray | float = 0.0
    attn_half_tokens: float = 0.0  # mean keys per query at which prefill attention is attn / 2
    expert_skew: float = 0.0  # log-normal sigma of expert popularity (0: uniform routing)


@dataclass(frozen=True)
class Bytes:
    """Bytes per element of the weights and the KV cache, per candidate. ``kv`` is what
    attention reads per cached element; ``kv_stored`` what the cache holds per element,
    when that differs (an FP8 cache whose entries the attention kernels dequantise: see
    ``perf.group.stored_kv_precision``); None: the same."""

    gemm: np.ndarray
    moe: np.ndarray
    kv: np.ndarray
    act: float = 2.0  # activations in bf16
    kv_stored: np.ndarray | None = None

    @property
    def kv_store(self) -> np.ndarray:
        """Bytes per cached element in memory (what sets the cache's capacity)."""
        return self.kv if self.kv_stored is None else self.kv_stored


# The share of the chip-to-host link a bulk copy of pinned host memory reaches: NVIDIA's
# NVbandwidth reports host_to_device_memcpy_ce at 55.6 GB/s on a PCIe Gen5 x16 link of
# 63 GB/s (the tool's published example; a secondary source). The collectives' fitted
# efficiency, which this load used before, describes NVLink collectives in the dev rows
# (none of which loads a prefix from host memory) and made it 2.1x slower.
HOST_LINK_EFF = 55.6 / 63.0


def _roofline(flops, nbytes, peak, eff_c, bw, eff_m):
    return np.maximum(flops / (peak * eff_c), nbytes / (bw * eff_m))


# two fused residual-add + RMSNorm kernels per layer, 4 passes of the hidden state each
NORM_ELEMS_PER_LAYER = 8.0

# The efficiency ramp of a GEMM follows the point where it turns compute-bound: its
# m_half is calibrated on a chip whose weight-streaming ridge is H100 BF16's and scales
# with each chip's own ridge, peak x bytes per weight / (2 x bandwidth) tokens. A
# compute-poor chip (H20: 37 FP8 tokens) fills its tensor cores with fewer tokens than
# an H100 (295); with a fixed m_half its small-M expert GEMMs came out compute-bound
# (DeepSeek-R1 on 8 x H20 at batch 32: 141 ms TPOT, 69 ms scaled; dev rows: TPOT 15.5% ->
# 14.7% median in sample).
RIDGE_REF_TOKENS = 989.4e12 * 2.0 / (2.0 * 3.35e12)  # H100 SXM, BF16: ~295 tokens


def ridge_scale(peak: np.ndarray, bw: np.ndarray, bytes_per_weight: np.ndarray) -> np.ndarray:
    """A chip's weight-streaming ridge (tokens) relative to H100 BF16's."""
    return peak * bytes_per_weight / (2.0 * bw) / RIDGE_REF_TOKENS


# 12-point Gauss-Hermite rule for the mean over a standard normal z: E f(z) = sum w f(z)
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(12)
_SKEW_Z = np.sqrt(2.0) * _GH_X
_SKEW_W = _GH_W / np.sqrt(np.pi)


def distinct_expert_share(per_expert: np.ndarray, skew: float) -> np.ndarray:
    """Expected share of an MoE layer's experts that at least one of its token-expert
    assignments hits, with ``per_expert`` assignments per expert on average. Uniform
    routing (``skew`` 0) is Poisson: 1 - exp(-a). Real routers prefer some experts: with
    expert popularity q log-normal (sigma ``skew``, mean 1) the share is E[1 - exp(-a q)],
    lower at moderate batches (the popular experts take repeat hits) and 1 at large ones.
    The mean over q is a 12-point Gauss-Hermite rule (within 0.1 % of the integral for
    sigma up to 1.5, 0.4 % at 2, the fit's bound)."""
    a = np.asarray(per_expert, dtype=np.float64)
    if skew <= 0.0:
        return -np.expm1(-a)
    q = np.exp(skew * _SKEW_Z - 0.5 * skew * skew)
    return -np.expm1(-a[..., None] * q) @ _SKEW_W


def _gemm_eff(eff_max: np.ndarray, m: np.ndarray, m_half: np.ndarray) -> np.ndarray:
    m = np.maximum(m, 1e-9)
    return eff_max * m / (m + m_half)


def layer_fixed_s(prof: ModelProfile, eff: Efficiency) -> np.ndarray:
    """Mean fixed cost of one layer: the engine's per-layer overhead plus, averaged over
    the layers, the extra of an MoE layer (router, top-k, token permute and combine)."""
    per_layer = prof.units * eff.layer_overhead_s + prof.moe_layers * eff.moe_layer_overhead_s
    return np.asarray(per_layer / max(prof.layers, 1))


def launch_floor_s(prof: ModelProfile, eff: Efficiency) -> np.ndarray:
    """The least a step takes when the host launches its kernels one by one: the engine
    overhead plus the launches of every layer (just the overhead with CUDA graphs)."""
    return eff.step_overhead_s + prof.units * np.asarray(eff.eager_host_s, dtype=np.float64)


def step_time(
    prof: ModelProfile, hw: HwVec, lay: Layout, load: StepLoad, nb: Bytes, eff: Efficiency
) -> dict[str, np.ndarray]:
    """Seconds per engine step, by component; ``total`` is their sum."""
    tp, dp, pp = lay.tp, lay.dp, lay.pp
    tokens = load.n_dec + load.n_pf  # per attention-DP rank
    h = prof.hidden
    m_half = eff.m_half * ridge_scale(hw.peak_gemm, hw.mem_bw, nb.gemm)
    moe_m_half = eff.moe_m_half * ridge_scale(hw.peak_moe, hw.mem_bw, nb.moe)

    # dense GEMMs on this rank's tokens, weights sharded over tp (pp folds into layers)
    p_dense = prof.p_every_token
    flops = 2.0 * tokens * p_dense / tp + tokens * prof.recurrent_flops_per_token / tp
    nbytes = p_dense * nb.gemm / tp + 4.0 * tokens * h * nb.act * prof.units / tp
    t_gemm = _roofline(
        flops, nbytes, hw.peak_gemm, _gemm_eff(eff.gemm_max, tokens, m_half), hw.mem_bw, eff.mem
    )

    # lm_head on sampled tokens: each decode token and each prefill's last; a verify step
    # scores every draft position (its drafts do not read the cache as a prefill would)
    sampled = load.n_dec + (load.pf_seqs if load.pf_reads_cache else load.n_pf)
    t_head = _roofline(
        2.0 * sampled * prof.p_lm_head / tp,
        prof.p_lm_head * nb.gemm / tp,
        hw.peak_gemm,
        _gemm_eff(eff.gemm_max, sampled, m_half),
        hw.mem_bw,
        eff.mem,
    )

    # routed experts: grouped GEMM over the worker's tokens
    t_moe = np.zeros_like(t_gemm)
    if prof.is_moe:
        e, k = prof.num_experts, prof.top_k
        assign = tokens * dp * k  # token-expert assignments in the worker per MoE layer
        ep = lay.moe_ep
        mean = assign / ep
        worst = mean + eff.moe_imbalance * np.sqrt(2.0 * mean * np.log(np.maximum(ep, 1.0)))
        experts_local = e / ep
        touched = experts_local * distinct_expert_share(assign / e, eff.expert_skew)
        flops_m = 2.0 * worst * prof.p_expert * prof.moe_layers / lay.moe_tp
        bytes_m = touched * prof.p_expert * nb.moe * prof.moe_layers / lay.moe_tp
        m_per_expert = worst / np.maximum(touched, 1e-9)
        t_moe = _roofline(
            flops_m,
            bytes_m,
            hw.peak_moe,
            _gemm_eff(eff.moe_max, m_per_expert, moe_m_half),
            hw.mem_bw,
            eff.mem,
        )

    # attention: decode streams the KV cache; prefill is causal flash attention. Per
    # sequence over all layers; heads split over tp (GQA caches too, MLA latents do not)
    head_split = tp
    dec_bytes = load.n_dec * prof.decode_kv_elems(load.ctx_dec + 1, tp) * nb.kv
    dec_flops = load.n_dec * prof.decode_attn_flops(load.ctx_dec + 1) / head_split
    t_dec_attn = _roofline(dec_flops, dec_bytes, hw.peak_attn, eff.decode_attn, hw.mem_bw, eff.mem)
    per_seq = load.n_pf / np.maximum(load.pf_seqs, 1.0)
    pf_flops = load.pf_seqs * prof.prefill_attn_flops(per_seq, load.ctx_pf) / head_split
    pf_bytes = load.pf_seqs * prof.prefill_kv_elems(load.ctx_pf + per_seq, tp) * nb.kv
    if not load.pf_reads_cache:
        pf_bytes = 0.0 * pf_bytes
    keys = np.maximum(load.ctx_pf + per_seq / 2.0, 1.0)  # mean keys a query attends
    attn_e = (
        eff.attn * keys / (keys + eff.attn_half_tokens) if eff.attn_half_tokens > 0 else eff.attn
    )
    t_pf_attn = np.where(
        load.n_pf > 0,
        _roofline(pf_flops, pf_bytes, hw.peak_attn, attn_e, hw.mem_bw, eff.mem),
        0.0,
    )

    # communication inside the worker, hierarchical where it spans scale-up domains
    # (``collectives``): one all-reduce per mixer or FFN block over the tensor-parallel
    # group (the whole worker without attention-DP), the MoE dispatch/combine all-to-all
    # over the expert-parallel group with attention-DP
    links = Links(
        bw_up=hw.su_bw * eff.comm,
        bw_out=hw.so_bw * eff.comm,
        lat_up=hw.su_lat + eff.comm_latency_s,
        lat_out=hw.so_lat + eff.comm_latency_s,
    )
    act = tokens * h * nb.act
    ar_group = np.where(dp > 1, tp, np.maximum(tp, lay.moe_tp * lay.moe_ep))
    ar_local = members_per_domain(ar_group, hw.su_domain, 1.0)
    allreduce = allreduce_s(ar_group, act, ar_local, links)
    t_comm = 2.0 * prof.units * allreduce
    if prof.is_moe:
        ep = lay.moe_ep
        a2a_bytes = tokens * prof.top_k * h * (1.0 + nb.act) * (ep - 1) / np.maximum(ep, 1)
        ep_local = members_per_domain(ep, hw.su_domain, lay.moe_tp)
        a2a = all_to_all_s(ep, a2a_bytes, ep_local, links)
        # both directions (dispatch and combine) pay the latency
        back = np.where(ep > ep_local, links.lat_out, links.lat_up)
        a2a = np.where((dp > 1) & (ep > 1), a2a + back, 0.0)
        t_comm = t_comm + prof.moe_layers * a2a
    t_pp = pipeline_hops_s(pp, lay.gpus / pp, hw.su_domain, act, links)
    t_comm = t_comm * (1.0 - eff.comm_overlap)

    # prefix-cache hits that live in host memory are loaded over the chip-to-host link:
    # the layers whose cache grows with the prefix (a sliding-window layer needs only its
    # window, which the tier and the KV transfer leave out alike)
    kv_tok = prof.kv_elems_per_token(tp, growing_only=True) * nb.kv_store  # as stored
    host_tokens = np.asarray(load.host_kv_tokens, dtype=np.float64)
    t_kv_load = np.where(
        host_tokens > 0,
        host_tokens * kv_tok / pp / np.maximum(hw.host_bw * HOST_LINK_EFF, 1e-9),
        0.0,
    )
    # hits in the node's NVMe tier are read at the drives' bandwidth share of the chip (the
    # chip-to-host link is several times faster, so the drives bound the copy)
    storage_tokens = np.asarray(load.storage_kv_tokens, dtype=np.float64)
    t_kv_load = t_kv_load + np.where(
        storage_tokens > 0,
        storage_tokens * kv_tok / pp / np.maximum(hw.storage_bw, 1e-9),
        0.0,
    )
    # hits in a store shared by the workers come over the network (``with_shared_store``)
    shared_tokens = np.asarray(load.shared_kv_tokens, dtype=np.float64)
    t_kv_load = t_kv_load + np.where(
        shared_tokens > 0,
        shared_tokens * kv_tok / pp / np.maximum(hw.shared_bw, 1e-9),
        0.0,
    )

    t_fixed = prof.layers * layer_fixed_s(prof, eff) + eff.step_overhead_s
    # element-wise kernels, memory-bound passes over the activations: a fused residual add
    # + RMSNorm before attention and before the MLP (read x and the residual, write both),
    # replicated on every tp rank, and the MLP activation over the intermediate (sharded)
    elems = tokens * (
        NORM_ELEMS_PER_LAYER * h * prof.units + (prof.p_dense + prof.p_shared) / h / tp
    )
    if prof.is_moe:
        routed = tokens * dp * prof.top_k * prof.p_expert * prof.moe_layers / h
        elems = elems + routed / (lay.moe_ep * lay.moe_tp)
    t_elem = elems * nb.act / (hw.mem_bw * eff.mem)
    gpu = (
        t_gemm
        + t_head
        + t_moe
        + t_dec_attn
        + t_pf_attn
        + t_comm
        + t_pp
        + t_kv_load
        + t_fixed
        + t_elem
    )
    # launches are asynchronous: an eager step is host-bound when its kernels are short
    eager_wait = np.maximum(launch_floor_s(prof, eff) - gpu, 0.0)
    total = gpu + eager_wait
    return {
        "total": total,
        "gemm": t_gemm + t_head,
        "moe": t_moe,
        "attn_decode": t_dec_attn,
        "attn_prefill": t_pf_attn,
        "comm": t_comm + t_pp,
        "kv_load": t_kv_load + 0 * total,
        "fixed": t_fixed + 0 * total,
        "elementwise": t_elem + 0 * total,
        "eager_wait": eager_wait + 0 * total,
        "lm_head": t_head + 0 * total,  # part of "gemm"
    }


def verify_and_draft_s(
    prof: ModelProfile,
    hw: HwVec,
    lay: Layout,
    n_dec: np.ndarray,
    ctx: np.ndarray,
    k: np.ndarray,
    nb: Bytes,
    eff: Efficiency,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speculative decoding with ``k`` drafts per sequence: (the plain decode step, the
    verify step, one draft pass) in seconds."""
    n, c, kk = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (n_dec, ctx, k)))
    zero = np.zeros_like(n)
    dec = step_time(prof, hw, lay, StepLoad(n, c, zero, zero, zero), nb, eff)
    # verify: k + 1 tokens per sequence, the KV cache read once (by the decode token's
    # attention, for all k + 1 queries; it was read a second time for the k drafts)
    drafts = replace(StepLoad(n, c, n * kk, c, n), pf_reads_cache=False)
    verify = step_time(prof, hw, lay, drafts, nb, eff)
    # draft (MTP / EAGLE head): about one decoder layer of the target per draft token,
    # and the vocabulary head for each draft (MTP shares the target's lm_head)
    head = dec["lm_head"]
    draft = (dec["total"] - dec["fixed"] - head) / prof.layers + head + layer_fixed_s(prof, eff)
    return dec["total"], verify["total"], draft
