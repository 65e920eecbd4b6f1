"""Where one estimate's time goes: the step components behind its TPOT and TTFT.

``estimate --breakdown`` adds three groups (milliseconds):

- ``decode_step``: one decode step of a (decode) rank at the estimate's running batch
  and the mean context (prompt + half the output), by ``step_time`` component. A plain
  step of one token per sequence; with speculative decoding TPOT is verify-and-draft
  steps over the accepted tokens, which this does not split. Agg TPOT is this step
  stretched by the prefill chunks it carries (``/(1 - prefill utilisation)``).
- ``prefill``: the request's own uncached prompt prefilled alone on a (prefill) worker,
  by component; in agg the engine carries it in chunked steps with the decodes.
- ``ttft``: request handling outside the engine (``ttft_overhead_s``: fixed, per layer,
  per uncached prompt token), the request's own prefill step(s) as the serving model
  charges them, queueing for a prefill slot, TRT-LLM's attention-DP balancing hold,
  disagg's KV transfer to the decode worker, and ``cohort_and_other``: the rest (mostly
  the closed-loop cohort wait, clients with equal output lengths returning together, less
  what the request saves by sharing its prefill step with the decodes), so the parts sum
  to TTFT. Open loop (``arrival_rate``) reports its prefill and queueing together as
  ``prefill_and_queue``.
"""

from __future__ import annotations

import numpy as np

from codesign.perf.calibration import Calibration
from codesign.perf.engine import efficiency, ttft_overhead_s
from codesign.perf.group import Group, make_layout, make_load
from codesign.perf.predict import disagg_layouts
from codesign.perf.step import step_time

STEP_PARTS = (
    "gemm",
    "moe",
    "attn_decode",
    "attn_prefill",
    "comm",
    "kv_load",
    "elementwise",
    "fixed",
    "eager_wait",
)


def _first(x: np.ndarray | float) -> float:
    """The single candidate's value."""
    return float(np.asarray(x).ravel()[0])


def _ms(parts: dict[str, np.ndarray]) -> dict[str, float]:
    out = {k: _first(parts[k]) * 1e3 for k in (*STEP_PARTS, "total")}
    return {k: v for k, v in out.items() if v != 0.0 or k == "total"}


def breakdown(g: Group, calib: Calibration, out: dict[str, float]) -> dict[str, dict[str, float]]:
    """Step components (ms) of the single-row group ``g`` whose outputs are ``out``."""
    r, prof = g.rows, g.prof
    agg = r.mode[0] == "agg"
    engines = list(r.backend)
    isl, osl = float(r.isl[0]), float(r.osl[0])
    cached = float(np.floor(isl * float(g.hit(np.array([0]))[0])))
    new = max(isl - cached, 1.0)
    host_kv = cached * float(g.host(np.array([0]))[0])
    storage_kv = cached * float(g.storage(np.array([0]))[0])
    shared_kv = cached * float(g.shared(np.array([0]))[0])
    hw_d = g.hw_decode if g.hw_decode is not None else g.hw
    eager = g.eager_at(np.array([0]))
    if agg:
        p_lay = d_lay = make_layout(r.tp, r.dp, r.moe_tp, r.moe_ep, r.pp, prof.is_moe)
    else:  # as the serving model ran them
        p_lay, d_lay = disagg_layouts(g, r, g.hw, hw_d, g.nb)
    batch = max(float(out["decode_batch_per_rank"]), 1.0)
    dec = step_time(
        prof,
        hw_d,
        d_lay,
        make_load(batch, isl + osl / 2.0, 0, 0, 0),
        g.nb,
        efficiency(calib, hw_d, engines, eager),
    )
    pf = step_time(
        prof,
        g.hw,
        p_lay,
        make_load(0, 0, new, cached, 1, host_kv, storage_kv, shared_kv),
        g.nb,
        efficiency(calib, g.hw, engines, eager),
    )
    ttft = out["ttft_s"] * 1e3
    parts = {
        "request_handling": float(ttft_overhead_s(calib, engines, prof.units, new)[0]) * 1e3,
        "prefill": float(out.get("own_prefill_s", np.nan)) * 1e3,
        "queue": float(out.get("queue_wait_s", 0.0)) * 1e3,
        "adp_balance": float(np.nan_to_num(out.get("adp_wait_s", 0.0))) * 1e3,
        "kv_transfer": float(np.nan_to_num(out.get("kv_transfer_s", 0.0))) * 1e3,
    }
    parts = {k: v for k, v in parts.items() if np.isfinite(v) and v != 0.0}
    # closed loop: mostly the cohort wait; open loop (no cohorts): prefill and queueing,
    # which the open-loop model does not report apart
    rest = "cohort_and_other" if g.arrival_rate is None else "prefill_and_queue"
    parts[rest] = ttft - sum(parts.values())
    parts["total"] = ttft
    return {"decode_step": _ms(dec), "prefill": _ms(pf), "ttft": parts}


def afd_breakdown(
    step_parts: dict[str, np.ndarray],
    step_overhead_s: np.ndarray,
    t_attn: dict[str, np.ndarray],
    t_ffn: dict[str, np.ndarray],
    prefill: dict[str, np.ndarray],
    request_handling_s: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Attention-FFN disaggregation's parts (ms): one micro-batch's pass on an attention
    rank (``attention_step``) and on the FFN pool (``ffn_step``) by component, the decode
    step as ``serving.afd.afd_step_parts`` composes it from the per-layer times plus the
    engine's step overhead, the prompt's prefill on the attention pool with the whole
    model, and TTFT's parts."""
    decode = {k: _first(v) * 1e3 for k, v in step_parts.items()}
    decode["step_overhead"] = _first(step_overhead_s) * 1e3
    decode["total"] = sum(decode.values())
    ttft = {"request_handling": _first(request_handling_s) * 1e3}
    ttft["prefill"] = _first(prefill["total"]) * 1e3
    ttft["total"] = sum(ttft.values())
    return {
        "attention_step": _ms(t_attn),
        "ffn_step": _ms(t_ffn),
        "decode_step": decode,
        "prefill": _ms(prefill),
        "ttft": ttft,
    }
