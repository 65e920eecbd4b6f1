"""Attention-FFN disaggregated decode for one deployment point.

The attention pool (``system``: tp x dp ranks, each with ``batch`` sequences) keeps the
KV cache; the FFN pool (``decode_system`` or the same system, ``ffn_chips`` chips with the
experts spread over them) runs dense MLP / experts. The step model is evaluated on each
part of the model separately (an attention-only and an FFN-only profile) and combined by
``serving.afd.afd_step_parts``. Prefill runs on the attention pool with the whole model
(as an aggregated worker would); activations cross the scale-up fabric when both pools
sit in one domain of the same system, else the scale-out NICs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from codesign.models import ModelArch, kv_elements_per_token
from codesign.perf.breakdown import afd_breakdown
from codesign.perf.calibration import Calibration
from codesign.perf.engine import byte_sizes, efficiency, ttft_overhead_s
from codesign.perf.hardware import hw_vectors
from codesign.perf.memory import memory_use
from codesign.perf.predict import make_layout, make_load, row_precisions
from codesign.perf.profile import ModelProfile
from codesign.perf.step import layer_fixed_s, step_time
from codesign.serving.afd import afd_step_parts, ffn_fanout
from hwmodels import System, power_w_per_chip, usd_per_chip_hour


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
    nb = byte_sizes([g], [m], [kv])
    eff_a, eff_f = efficiency(calib, hw_a, [req.engine]), efficiency(calib, hw_f, [req.engine])
    attn_p, ffn_p = _parts(prof)
    isl, osl = float(req.isl), float(req.osl)
    ctx = isl + osl / 2.0
    ranks = req.tp * req.dp
    tokens = float(req.batch * req.dp)  # sequences decoding across the attention pool
    mb = max(req.micro_batches, 1)
    lay_a = make_layout(req.tp, req.dp, 1, 1, req.pp, False)
    lay_f = (
        make_layout(1, 1, 1, req.ffn_chips, 1, True)
        if prof.is_moe
        else make_layout(req.ffn_chips, 1, 0, 0, 1, False)
    )
    t_a = step_time(attn_p, hw_a, lay_a, make_load(req.batch / mb, ctx, 0, 0, 0), nb, eff_a)
    t_f = step_time(ffn_p, hw_f, lay_f, make_load(tokens / mb, 0, 0, 0, 0), nb, eff_f)
    per_layer_a = (t_a["total"] - t_a["fixed"]) / prof.layers + layer_fixed_s(attn_p, eff_a)
    # the FFN pool runs the experts: its layers carry the MoE layers' extra fixed cost
    per_layer_f = (t_f["total"] - t_f["fixed"]) / prof.layers + layer_fixed_s(ffn_p, eff_f)
    same = (system.name == ffn_system.name) & (ranks + req.ffn_chips <= hw_a.su_domain)
    bw = np.where(same, hw_a.su_bw, np.minimum(hw_a.so_bw, hw_f.so_bw)) * eff_a.comm
    # each token's hidden state goes to every FFN chip that holds one of its experts (all
    # of them for a tensor-parallel dense MLP), and each hop pays the link's latency
    copies = ffn_fanout(req.ffn_chips, prof.top_k, prof.is_moe)
    lat = np.where(same, hw_a.su_lat, np.maximum(hw_a.so_lat, hw_f.so_lat)) + eff_a.comm_latency_s
    xfer = tokens / mb * prof.hidden * nb.act * copies / (bw * min(ranks, req.ffn_chips)) + lat
    step_parts = afd_step_parts(prof.layers, per_layer_a, per_layer_f, xfer, mb)
    tpot = sum(step_parts.values()) + eff_a.step_overhead_s
    full = make_layout(req.tp, req.dp, 1, ranks, req.pp, prof.is_moe)
    pf = step_time(prof, hw_a, full, make_load(0, 0, isl, 0, 1), nb, eff_a)
    handling = ttft_overhead_s(calib, [req.engine], prof.units, isl)
    ttft = pf["total"] + handling
    clients = tokens
    rps = clients / (ttft + (osl - 1) * tpot)
    chips_a, chips_f = ranks * req.pp, req.ffn_chips
    use = memory_use(attn_p, lay_a, nb, hw_a.mem_bytes, float(kv_elements_per_token(arch)))
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
        "gemm_precision": g,
        "moe_precision": m,
        "kv_precision": kv,
        "weights_gb_per_gpu": float(use.weights_bytes_per_gpu[0]) / 1e9,
        "kv_tokens_per_worker": float(use.kv_tokens_per_worker[0]),
        "decode_batch_per_rank": float(req.batch),
        "fits": bool(use.fits[0]),
        "power_kw": power / 1e3,
        "usd_per_hour": usd_h,
        "usd_per_mtok_output": usd_h / max(out_tok_s * 3600.0, 1e-12) * 1e6,
        "calibration": calib.fitted_on,
    }
    if req.breakdown:
        result["breakdown"] = afd_breakdown(
            step_parts, eff_a.step_overhead_s, t_a, t_f, pf, handling
        )
    return result
