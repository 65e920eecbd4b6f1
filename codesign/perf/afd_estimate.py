"""Attention-FFN disaggregated decode for one deployment point.

The attention pool (``system``: tp x dp x pp chips, dp attention-DP ranks of ``batch``
clients each) keeps the KV cache; the FFN pool (``decode_system`` or the same system,
``ffn_chips`` = F chips) runs the dense MLP / experts. The step model is evaluated on
each part of the model separately (an attention-only and an FFN-only profile) and
combined by ``serving.afd.afd_step_parts``:

- attention pool: tensor-parallel attention pays one all-reduce per layer (after the
  output projection), not the two of a whole layer (``step_time`` charges mixer + MLP);
- FFN pool: the experts are expert-parallel over the F chips; the dense layers and the
  shared experts are replicated on every FFN chip and run on the tokens that chip serves,
  tokens / F (a token's shared expert runs on one of the chips its hidden state already
  goes to). A dense model's MLP is tensor-parallel over the F chips. The pool runs no
  collectives of its own: dispatch and combine are the activation hops (``transfer``),
  and the partial sums are added as they come back;
- memory: the FFN pool must hold its weights, and an attention-DP rank runs no more
  sequences than its KV cache holds (``kv_slots_per_rank``, as the aggregated path);
- prefill is split the same way (the attention pool holds no FFN weights): a prompt's
  attention on one attention-DP rank, its FFN on the FFN pool, its hidden states out and
  back every layer, one layer after the other; steps of their own that the decode steps
  wait for. The FFN pool serves every rank's prefills, so a rank's prefill work is the
  larger of its own prefill and dp times its FFN part: the closed loop
  (``serving.closed_loop.aggregated``) bounds throughput by the prefill work, stretches
  TPOT by 1 / (1 - rho) and adds the queueing and cohort waits to TTFT.

Activations cross the scale-up fabric when both pools sit in one domain of the same
system, else the scale-out NICs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from codesign.models import ModelArch, kv_elements_per_token
from codesign.perf.breakdown import afd_breakdown
from codesign.perf.calibration import Calibration
from codesign.perf.engine import byte_sizes, efficiency, sync_factor, ttft_overhead_s
from codesign.perf.hardware import hw_vectors
from codesign.perf.kv_budget import memory_fraction, memory_setting
from codesign.perf.memory import holds_one_sequence, kv_slots_per_rank, memory_use
from codesign.perf.predict import make_layout, make_load, row_precisions, stored_kv_precision
from codesign.perf.profile import ModelProfile
from codesign.perf.step import Layout, layer_fixed_s, step_time
from codesign.serving.afd import afd_step_parts, ffn_fanout
from codesign.serving.closed_loop import aggregated
from hwmodels import System, power_w_per_chip, usd_per_chip_hour

Step = dict[str, np.ndarray]


def _parts(prof: ModelProfile) -> tuple[ModelProfile, ModelProfile]:
    attn = dataclasses.replace(
        prof,
        p_dense=0.0,
        p_shared=0.0,
        p_router=0.0,
        p_routed_total=0.0,
        p_expert=0.0,
        moe_layers=0,
    )
    ffn = dataclasses.replace(
        prof,
        p_attn=0.0,
        p_recurrent=0.0,
        attn=(),
        p_lm_head=0.0,
        recurrent_flops_per_token=0.0,
    )
    return attn, ffn


def _less_comm(t: Step, comm: np.ndarray) -> Step:
    """The step ``t`` with ``comm`` seconds of its communication taken out."""
    return {**t, "comm": t["comm"] - comm, "total": t["total"] - comm}


def _per_layer(t: Step, part: ModelProfile, layers: int, eff: Any) -> np.ndarray:
    """One layer of a pool's step: its share of the step's work plus the pool's own fixed
    cost per layer (the step's fixed overhead is charged once, for the whole step)."""
    return (t["total"] - t["fixed"]) / layers + layer_fixed_s(part, eff)


def _ffn_layout(prof: ModelProfile, ffn_chips: int) -> tuple[Layout, float]:
    """The FFN pool's layout and the share of the tokens each of its chips runs the dense
    GEMMs for. MoE: experts over F chips (ep = F), dense layers and shared experts
    replicated (dp = F, tp = 1) on tokens / F each; dense model: the MLP split over F."""
    if prof.is_moe:
        return make_layout(1, ffn_chips, 1, ffn_chips, 1, True), 1.0 / ffn_chips
    return make_layout(ffn_chips, 1, 0, 0, 1, False), 1.0


def estimate_afd(
    req,
    arch: ModelArch,
    prof: ModelProfile,
    system: System,
    ffn_system: System | None,
    calib: Calibration,
) -> dict[str, Any]:
    ffn_system = ffn_system or system
    g, m, kv = row_precisions(
        req.gemm_precision or "", req.moe_precision or "", "", req.engine, prof
    )
    hw_a = hw_vectors([system], [g], [m])
    hw_f = hw_vectors([ffn_system], [g], [m])
    stored = stored_kv_precision(g, kv, prof)  # as the aggregated estimate stores it
    nb = byte_sizes([g], [m], [kv], [stored])
    eff_a, eff_f = efficiency(calib, hw_a, [req.engine]), efficiency(calib, hw_f, [req.engine])
    engines = [req.engine]
    attn_p, ffn_p = _parts(prof)
    isl, osl = float(req.isl), float(req.osl)
    ctx = isl + osl / 2.0
    ranks = req.tp * req.dp  # attention chips one layer runs on (one pipeline stage)
    chips_a, chips_f = ranks * req.pp, req.ffn_chips
    mb = max(req.micro_batches, 1)
    lay_a = make_layout(req.tp, req.dp, 1, 1, req.pp, False)
    lay_f, token_share = _ffn_layout(prof, req.ffn_chips)

    # memory: the attention pool's KV cache bounds the sequences a rank runs at once
    kv_elems = float(kv_elements_per_token(arch))
    frac = req.memory_fraction
    use = memory_use(attn_p, lay_a, nb, hw_a.mem_bytes, kv_elems, engines, frac)
    use_f = memory_use(ffn_p, lay_f, nb, hw_f.mem_bytes, 0.0, engines, frac)
    # a hybrid model's recurrent layers run (and keep their state) on the attention pool
    state = use.state_tokens_per_seq
    slots = kv_slots_per_rank(use.kv_tokens_per_worker, lay_a.dp, engines, isl, osl, state)
    running = np.minimum(float(req.batch), slots)  # sequences decoding per rank
    kv_fits = holds_one_sequence(use.kv_tokens_per_worker, lay_a.dp, isl + osl, state)
    fits = use.fits & use_f.fits & kv_fits
    tokens = running * req.dp  # sequences decoding across the attention pool

    # step_time charges two tensor-parallel all-reduces per layer (mixer and MLP); only the
    # attention output's remains on the attention pool. They are the comm of the step
    # without pipeline hops. The FFN pool runs none: dispatch and combine are the hops
    flat = dataclasses.replace(lay_a, pp=np.ones_like(lay_a.pp))

    def attn_step(load: Any) -> Step:
        t = step_time(attn_p, hw_a, lay_a, load, nb, eff_a)
        return _less_comm(t, 0.5 * step_time(attn_p, hw_a, flat, load, nb, eff_a)["comm"])

    def ffn_step(load: Any) -> Step:
        t = step_time(ffn_p, hw_f, lay_f, load, nb, eff_f)
        return _less_comm(t, t["comm"])

    t_a = attn_step(make_load(running / mb, ctx, 0, 0, 0))
    t_f = ffn_step(make_load(tokens / mb * token_share, 0, 0, 0, 0))
    per_layer_a = _per_layer(t_a, attn_p, prof.layers, eff_a)
    # the FFN pool runs the experts: its layers carry the MoE layers' extra fixed cost
    per_layer_f = _per_layer(t_f, ffn_p, prof.layers, eff_f)
    same = (system.name == ffn_system.name) & (chips_a + chips_f <= hw_a.su_domain)
    bw = np.where(same, hw_a.su_bw, np.minimum(hw_a.so_bw, hw_f.so_bw)) * eff_a.comm
    # each token's hidden state goes to every FFN chip that holds one of its experts (all
    # of them for a tensor-parallel dense MLP), and each hop pays the link's latency
    copies = ffn_fanout(req.ffn_chips, prof.top_k, prof.is_moe)
    lat = np.where(same, hw_a.su_lat, np.maximum(hw_a.so_lat, hw_f.so_lat)) + eff_a.comm_latency_s

    def link_s(tokens_sent: Any, senders: int) -> Any:
        """Seconds a hop holds the link: the senders' chips each send their share."""
        return tokens_sent * prof.hidden * nb.act * copies / (bw * min(senders, req.ffn_chips))

    link = link_s(tokens / mb, ranks)
    xfer = link + lat
    step_parts = afd_step_parts(prof.layers, per_layer_a, per_layer_f, xfer, mb, link)
    step = sum(step_parts.values()) + eff_a.step_overhead_s

    # prefill: a step of its own per request, split like the decode steps (the attention
    # pool holds no FFN weights): its attention on one attention-DP rank, its FFN on the
    # FFN pool, the prompt's hidden states out and back every layer from that rank's tp
    # chips, one layer after the other (one micro-batch)
    pf_a = attn_step(make_load(0, 0, isl, 0, 1))
    pf_f = ffn_step(make_load(isl * token_share, 0, 0, 0, 0))
    fixed = prof.layers * (layer_fixed_s(attn_p, eff_a) + layer_fixed_s(ffn_p, eff_f))
    pf = {k: pf_a[k] + pf_f[k] for k in pf_a}
    pf["comm"] = pf["comm"] + 2.0 * prof.layers * (link_s(isl, req.tp) + lat)
    pf["fixed"] = fixed + eff_a.step_overhead_s
    pf["total"] = sum(v for k, v in pf.items() if k not in ("total", "lm_head"))  # in gemm
    handling = ttft_overhead_s(calib, engines, prof.units, isl)
    # the FFN pool serves every attention rank's prefills, and each decode step's FFN part
    # waits behind them: per rank, a prefill occupies it dp times its own FFN work
    work = np.maximum(
        pf["total"], req.dp * prof.layers * _per_layer(pf_f, ffn_p, prof.layers, eff_f)
    )
    out = aggregated(
        np.array([float(req.batch)]),
        np.array([osl]),
        step,
        pf["total"],
        work,
        handling,
        calib.queue_factor,
        sync_factor(calib, engines),
        slots,
    )
    ttft, tpot = out["ttft_s"], out["tpot_s"]
    rps = out["requests_per_s"] * req.dp
    use_a_w = use.weights_bytes_per_gpu
    usd_h = chips_a * usd_per_chip_hour(system, 1.0) + chips_f * usd_per_chip_hour(ffn_system, 1.0)
    power = chips_a * power_w_per_chip(system, 1.0) + chips_f * power_w_per_chip(ffn_system, 1.0)
    out_tok_s = float(rps[0]) * osl
    result: dict[str, Any] = {
        "ttft_ms": float(ttft[0]) * 1e3,
        "tpot_ms": float(tpot[0]) * 1e3,
        "tokens_per_s_per_user": 1.0 / float(tpot[0]),
        "output_tokens_per_s": out_tok_s,
        "tokens_per_s_per_gpu": out_tok_s / (chips_a + chips_f),
        "requests_per_s": float(rps[0]),
        "gpus": float(chips_a + chips_f),
        "attention_chips": float(chips_a),
        "ffn_chips": float(chips_f),
        "attention_layer_ms": float(per_layer_a[0]) * 1e3,
        "ffn_layer_ms": float(per_layer_f[0]) * 1e3,
        "transfer_ms": float(xfer[0]) * 1e3,
        "prefill_utilization": float(out["prefill_utilization"][0]),
        "gemm_precision": g,
        "moe_precision": m,
        "kv_precision": kv,
        "kv_stored_precision": stored,
        "weights_gb_per_gpu": float(use_a_w[0]) / 1e9,
        "ffn_weights_gb_per_gpu": float(use_f.weights_bytes_per_gpu[0]) / 1e9,
        "kv_tokens_per_worker": float(use.kv_tokens_per_worker[0]),
        "kv_memory_setting": memory_setting(
            req.engine,
            memory_fraction(
                req.engine, system.chip.memory_capacity_bytes, req.tp, req.pp, req.dp, frac
            ),
        ),
        "kv_slots_per_rank": float(slots[0]),
        "decode_batch_per_rank": float(out["decode_batch"][0]),
        "fits": bool(fits[0]),
        "power_kw": power / 1e3,
        "usd_per_hour": usd_h,
        "usd_per_mtok_output": usd_h / max(out_tok_s * 3600.0, 1e-12) * 1e6,
        "calibration": calib.fitted_on,
    }
    if req.breakdown:
        # TPOT is the step stretched by the prefills it waits for; TTFT adds the queueing
        parts = {**step_parts, "prefill_stretch": tpot - step}
        bd = afd_breakdown(parts, eff_a.step_overhead_s, t_a, t_f, pf, handling)
        known = bd["ttft"]["total"]
        bd["ttft"].pop("total")
        bd["ttft"]["queue_and_cohort"] = float(ttft[0]) * 1e3 - known
        bd["ttft"]["total"] = float(ttft[0]) * 1e3
        result["breakdown"] = bd
    return result
