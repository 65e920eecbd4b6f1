"""One deployment point (or many), estimated end to end: TTFT, TPOT, throughput, cost.

``estimate`` builds the same row records the validation path predicts, so a point
estimate and a validated prediction go through exactly the same code.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from codesign.errors import SpecError
from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.engine import byte_sizes
from codesign.perf.error_bands import band_fields
from codesign.perf.group import QUANT_NAMES, is_quant_name
from codesign.perf.hardware import hw_vectors, with_shared_store
from codesign.perf.kv_budget import memory_fraction, memory_setting
from codesign.perf.predict import Group, evaluate_group, row_precisions, stored_kv_precision
from codesign.perf.profile import build_profile
from codesign.validation.silicon import SiliconRows
from hwmodels import derive_system, get_system, power_w_per_chip, usd_per_chip_hour


class EstimateRequest(BaseModel):
    """A single deployment under closed-loop load (clients per attention-DP rank)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    system: str
    mode: Literal["agg", "disagg", "afd"] = "agg"
    decode_system: str | None = None
    engine: Literal["trtllm", "vllm", "sglang"] = "trtllm"
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    dp: int = Field(1, ge=1, description="attention data-parallel ranks per worker")
    ep: int = Field(0, ge=0, description="expert parallel size (0: tp x dp for MoE)")
    batch: int = Field(8, ge=1, description="clients per attention-DP rank (agg) or decode rank")
    isl: int = Field(4096, ge=1)
    osl: int = Field(512, ge=1)
    prefix_hit: float = Field(0.0, ge=0.0, lt=1.0, description="cached fraction of the prompt")
    host_share: float = Field(
        0.0, ge=0.0, le=1.0, description="part of the cached prefix held in host memory"
    )
    storage_share: float = Field(
        0.0, ge=0.0, le=1.0, description="part of the cached prefix read from the node's NVMe"
    )
    shared_share: float = Field(
        0.0, ge=0.0, le=1.0, description="part of the cached prefix read from a shared KV store"
    )
    shared_read_gb_s: float = Field(
        0.0, ge=0.0, description="the shared KV store's aggregate read bandwidth, GB/s"
    )
    gemm_precision: str | None = None
    moe_precision: str | None = None
    prefill_workers: int = Field(1, ge=1)
    decode_workers: int = Field(1, ge=1)
    hardware_overrides: dict[str, float] = Field(default_factory=dict)
    spec_method: Literal["none", "mtp", "eagle"] = "none"
    draft_tokens: int = Field(0, ge=0, le=16, description="speculative draft length k")
    acceptance: float = Field(0.7, ge=0.0, lt=1.0, description="per-token draft acceptance")
    ffn_chips: int = Field(8, ge=1, description="AFD: chips of the FFN/expert pool")
    micro_batches: int = Field(2, ge=1, le=8, description="AFD: ping-pong micro-batches")
    arrival_rate: float | None = Field(
        None, gt=0, description="open loop: requests/s offered (default: closed loop)"
    )
    cuda_graphs: bool = Field(
        True, description="decode steps replayed as CUDA graphs (false: eager launches)"
    )
    adp_balance_iters: int = Field(
        0,
        ge=0,
        le=100_000,
        description="TRT-LLM attention-DP balancing timeout in iterations (0: off, the default)",
    )
    memory_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="the engine's memory setting, for every pool: vLLM "
        "--gpu-memory-utilization, SGLang --mem-fraction-static, TRT-LLM "
        "free_gpu_memory_fraction (default: the engine's own)",
    )
    breakdown: bool = Field(
        False, description="also return the step components behind TPOT and TTFT (ms)"
    )

    @model_validator(mode="after")
    def _check(self) -> EstimateRequest:
        for flag, name in (
            ("--precision", self.gemm_precision),
            ("--moe-precision", self.moe_precision),
        ):
            if name and not is_quant_name(name):
                raise ValueError(f"{flag} {name!r}: choose one of {', '.join(QUANT_NAMES)}")
        if self.decode_system and self.mode == "agg":
            raise ValueError("--decode-system needs --mode disagg or afd")
        if self.host_share > 0 and self.prefix_hit == 0:
            raise ValueError("--host-share needs --prefix-hit > 0 (it splits the cached part)")
        if self.storage_share > 0 and self.prefix_hit == 0:
            raise ValueError("--storage-share needs --prefix-hit > 0 (it splits the cached part)")
        if self.shared_share > 0 and self.prefix_hit == 0:
            raise ValueError("--shared-share needs --prefix-hit > 0 (it splits the cached part)")
        if self.shared_read_gb_s > 0 and self.shared_share == 0:
            raise ValueError("--shared-read-gb-s needs --shared-share > 0 (nothing is read)")
        if self.shared_share > 0 and self.shared_read_gb_s <= 0:
            raise ValueError(
                "--shared-share needs --shared-read-gb-s > 0 (the store's aggregate read bandwidth)"
            )
        if self.host_share + self.storage_share + self.shared_share > 1.0 + 1e-9:
            raise ValueError(
                f"--host-share {self.host_share:g} + --storage-share {self.storage_share:g} "
                f"+ --shared-share {self.shared_share:g} exceed 1 (the rest of the cached "
                "prefix is on the device)"
            )
        if self.spec_method != "none" and self.draft_tokens == 0:
            raise ValueError(f"--spec {self.spec_method} needs --draft-tokens >= 1")
        if self.adp_balance_iters and self.engine != "trtllm":
            raise ValueError(
                "--adp-balance-iters is TRT-LLM's attention-DP balancing; use --engine trtllm"
            )
        return self


def _rows(req: EstimateRequest, moe: bool) -> SiliconRows:
    ep = req.ep or (req.tp * req.dp if moe else 0)
    moe_tp = max(1, (req.tp * req.dp) // ep) if moe and ep else 0
    agg = req.mode == "agg"
    ranks = req.decode_workers * req.dp
    conc = req.batch * req.dp if agg else req.batch * ranks
    ints = {
        "isl": req.isl,
        "osl": req.osl,
        "concurrency": conc,
        "batch": req.batch if agg else 0,
        "tp": req.tp if agg else 0,
        "pp": req.pp if agg else 0,
        "dp": req.dp if agg else 0,
        "moe_tp": moe_tp if agg else 0,
        "moe_ep": ep if agg else 0,
    }
    for ph, workers in (("p", req.prefill_workers), ("d", req.decode_workers)):
        vals = {
            "batch": 1 if ph == "p" else req.batch,
            "workers": workers,
            "tp": req.tp,
            "pp": req.pp,
            "dp": req.dp,
            "moe_tp": moe_tp,
            "moe_ep": ep,
        }
        for k, v in vals.items():
            ints[f"{ph}_{k}"] = 0 if agg else v
    arrays: dict[str, np.ndarray] = {k: np.array([v], dtype=np.int64) for k, v in ints.items()}
    strs = {
        "id": "estimate",
        "backend": req.engine,
        "backend_version": "",
        "model": req.model,
        "system": req.system,
        "mode": req.mode,
        "precision": "",
        "gemm_quant": req.gemm_precision or "",
        "moe_quant": req.moe_precision or "",
    }
    for k, v in strs.items():
        arr = np.empty(1, dtype=object)
        arr[0] = v
        arrays[k] = arr
    arrays["ttft_ms"] = np.array([np.nan])
    arrays["tpot_ms"] = np.array([np.nan])
    return SiliconRows(**arrays)


def _unmeasured(req: EstimateRequest) -> list[str]:
    """What this request has that the measured rows behind the error bands did not."""
    out = []
    if req.prefix_hit > 0:
        out.append("prefix-cache hits")
    if req.arrival_rate:
        out.append("open-loop arrivals")
    if req.spec_method != "none" and req.draft_tokens > 0:
        out.append("speculative decoding on record")
    if req.decode_system:
        out.append("mixed prefill/decode systems")
    if req.hardware_overrides:
        out.append("hardware overrides")
    return out


def estimate(req: EstimateRequest, calib: Calibration | None = None) -> dict[str, Any]:
    """TTFT, TPOT, tokens/s per user and per GPU, memory, power and cost of one point
    (with ``req.breakdown``, also ``breakdown``: the step components, ``perf.breakdown``)."""
    calib = calib or load_calibration()
    arch = load_model(req.model)
    prof = build_profile(arch)
    if req.ep and not prof.is_moe:
        raise SpecError(f"--ep {req.ep} but {arch.id} has no experts")
    if prof.is_moe and req.ep and prof.num_experts % req.ep:
        raise SpecError(f"ep={req.ep} does not divide the {prof.num_experts} experts of {arch.id}")
    if prof.num_heads and prof.num_heads % req.tp:
        raise SpecError(f"tp={req.tp} does not divide the {prof.num_heads} heads of {arch.id}")
    if prof.is_moe and req.ep and (req.tp * req.dp) % req.ep and req.mode != "afd":
        # the experts live on the worker's tp x dp GPUs: ep of them, moe_tp = tp x dp / ep
        raise SpecError(
            f"ep={req.ep} must divide tp x dp = {req.tp * req.dp} (the worker's GPUs hold "
            "the experts: ep of them, each expert split over the rest)"
        )
    system = get_system(req.system)
    if req.host_share > 0 and system.host_kv_tier() is None:
        raise SpecError(f"{system.name} has no host-memory KV tier; set --host-share 0")
    if req.storage_share > 0 and system.storage_kv_tier() is None:
        raise SpecError(f"{system.name} has no NVMe storage KV tier; set --storage-share 0")
    if req.hardware_overrides:
        system = derive_system(system, set=req.hardware_overrides)
    decode = get_system(req.decode_system) if req.decode_system else None
    if decode is not None and decode.name == system.name and not req.hardware_overrides:
        decode = None  # the same system: one pool of chips, which can share a domain
    if req.mode == "afd" and req.arrival_rate:
        raise SpecError("open-loop (--arrival-rate) is not modelled for afd; use clients")
    if req.mode == "afd":
        ignored = [
            flag
            for flag, on in (
                ("--spec", req.spec_method != "none"),
                ("--prefix-hit", req.prefix_hit > 0),
                ("--ep", req.ep > 0),
            )
            if on
        ]
        if ignored:
            raise SpecError(
                f"{', '.join(ignored)} not modelled for afd (the expert pool spreads the "
                "experts over --ffn-chips; no drafts or cached prefixes); drop them"
            )
    if req.mode == "afd" and not req.cuda_graphs:
        raise SpecError(
            "--eager is not modelled for afd (no engine runs attention-FFN disaggregation "
            "eagerly); drop --eager"
        )
    if req.mode == "afd":
        from codesign.perf.afd_estimate import estimate_afd

        return estimate_afd(req, arch, prof, system, decode, calib)
    rows = _rows(req, prof.is_moe)
    k = req.draft_tokens if req.spec_method != "none" else 0
    g, m, kv = row_precisions(rows.gemm_quant[0], rows.moe_quant[0], "", req.engine, prof)
    stored = stored_kv_precision(g, kv, prof)  # the cache's entries (kv: what attention reads)
    hw = hw_vectors([system], [g], [m])
    if req.shared_share > 0:  # the chips that prefill read the shared store together
        readers = req.tp * req.dp * req.pp * (req.prefill_workers if req.mode == "disagg" else 1)
        hw = with_shared_store(hw, np.array([req.shared_read_gb_s * 1e9]), np.array([readers]))
    fraction = None if req.memory_fraction is None else np.array([req.memory_fraction])
    group = Group(
        index=np.array([0]),
        rows=rows,
        prof=prof,
        kv_elems_per_token=float(kv_elements_per_token(arch)),
        hw=hw,
        nb=byte_sizes([g], [m], [kv], [stored]),
        hw_decode=hw_vectors([decode], [g], [m]) if decode else None,
        prefix_hit=np.array([req.prefix_hit]),
        host_share=np.array([req.host_share]),
        storage_share=np.array([req.storage_share]) if req.storage_share else None,
        shared_share=np.array([req.shared_share]) if req.shared_share else None,
        spec_k=np.array([float(k)]) if k else None,
        spec_alpha=np.array([req.acceptance]) if k else None,
        arrival_rate=np.array([req.arrival_rate]) if req.arrival_rate else None,
        eager=None if req.cuda_graphs else np.array([True]),
        adp_balance_iters=np.array([float(req.adp_balance_iters)]),
        mem_fraction=fraction,
        p_mem_fraction=fraction,
    )
    out = {k: float(v[0]) for k, v in evaluate_group(group, calib).items()}
    ttft, tpot = out["ttft_s"], out["tpot_s"]
    rps = out["requests_per_s"]
    gpus = out["gpus"]
    stable = bool(np.isfinite(ttft) and np.isfinite(tpot))
    out_tok_s = rps * req.osl if stable else 0.0  # an overloaded deployment serves nothing
    if decode is not None:
        p_g, d_g = out["prefill_gpus"], out["decode_gpus"]
        usd_h = p_g * usd_per_chip_hour(system, 1.0) + d_g * usd_per_chip_hour(decode, 1.0)
        power = p_g * power_w_per_chip(system, 1.0) + d_g * power_w_per_chip(decode, 1.0)
    else:
        usd_h = gpus * usd_per_chip_hour(system, 1.0)
        power = gpus * power_w_per_chip(system, 1.0)
    mem = (decode or system).chip.memory_capacity_bytes
    setting = memory_fraction(req.engine, mem, req.tp, req.pp, req.dp, req.memory_fraction, k > 0)
    result: dict[str, Any] = {
        "ttft_ms": ttft * 1e3,
        "tpot_ms": tpot * 1e3,
        # the range measured latencies of this mode and engine have fallen in around the
        # model's predictions (10th-90th percentile), where the calibration carries one
        **(
            band_fields(
                calib.error_bands, req.mode, req.engine, ttft * 1e3, tpot * 1e3, _unmeasured(req)
            )
            if stable
            else {}
        ),
        "tokens_per_s_per_user": 1.0 / tpot if stable else 0.0,
        "output_tokens_per_s": out_tok_s,
        "tokens_per_s_per_gpu": out_tok_s / gpus,
        "requests_per_s": rps,
        "gpus": gpus,
        "gemm_precision": g,
        "moe_precision": m,
        "kv_precision": kv,  # what decode attention reads per cached element
        "kv_stored_precision": stored,  # what the cache holds: sets kv_tokens_per_worker
        "weights_gb_per_gpu": out["weights_bytes_per_gpu"] / 1e9,
        "kv_tokens_per_worker": out["kv_tokens_per_worker"],
        # the engine setting that capacity assumes (what ``codesign export`` writes)
        "kv_memory_setting": memory_setting(req.engine, setting),
        "decode_batch_per_rank": out["decode_batch_per_rank"],
        # sequences a (decode) rank's KV cache holds at the engine's admission policy
        # (TRT-LLM reserves prompt + output, vLLM/SGLang hold prompt + half the output)
        "kv_slots_per_rank": out["kv_slots_per_rank"],
        # the part of TTFT that TRT-LLM's attention-DP balancing holds a request (agg)
        "adp_balance_wait_ms": float(np.nan_to_num(out.get("adp_wait_s", 0.0))) * 1e3,
        "fits": bool(out["fits"]),
        "stable": stable,
        "power_kw": power / 1e3,
        "usd_per_hour": usd_h,
        "usd_per_mtok_output": usd_h / max(out_tok_s * 3600.0, 1e-12) * 1e6,
        "calibration": calib.fitted_on,
    }
    if req.breakdown:
        from codesign.perf.breakdown import breakdown

        result["breakdown"] = breakdown(group, calib, out)
    return result
