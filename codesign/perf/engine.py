"""Assemble per-candidate efficiencies and byte sizes from a calibration."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from codesign.perf.calibration import Calibration
from codesign.perf.hardware import HwVec
from codesign.perf.profile import bytes_per_element
from codesign.perf.step import Bytes, Efficiency

DEFAULT_CHUNK_TOKENS = 8192  # max tokens per step (TRT-LLM max_num_tokens, SGLang/vLLM chunk)


def _lookup(keys: Sequence[str] | np.ndarray, table: Callable[[str], float]) -> np.ndarray:
    """table(key) for every key, calling ``table`` once per distinct key."""
    uniq, inverse = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    return np.array([table(str(k)) for k in uniq], dtype=np.float64)[inverse]


def efficiency(calib: Calibration, hw: HwVec, engines: Sequence[str]) -> Efficiency:
    layer = _lookup(engines, lambda e: calib.engine(calib.layer_overhead_us, e)) * 1e-6
    step = _lookup(engines, lambda e: calib.engine(calib.step_overhead_ms, e)) * 1e-3
    gmax = _lookup(hw.gemm_class, calib.gemm_eff_max.__getitem__)
    mmax = _lookup(hw.moe_class, calib.gemm_eff_max.__getitem__)
    return Efficiency(
        gemm_max=gmax,
        moe_max=mmax,
        m_half=calib.gemm_m_half_tokens,
        moe_m_half=calib.moe_m_half_tokens,
        attn=calib.attn_eff,
        decode_attn=calib.decode_attn_eff,
        mem=calib.mem_eff,
        comm=calib.comm_eff,
        comm_latency_s=calib.comm_latency_us * 1e-6,
        layer_overhead_s=layer,
        step_overhead_s=step,
        moe_imbalance=calib.moe_imbalance,
    )


def ttft_overhead_s(
    calib: Calibration,
    engines: Sequence[str],
    layers: int = 0,
    input_tokens: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Request handling outside the engine steps: a fixed part per engine, a part per layer
    (the first token's prefill and decode launches scale with depth) and a part per
    uncached prompt token (``input_tokens``: request-path work that grows with the prompt
    to prefill; see ``Calibration``)."""
    fixed = _lookup(engines, lambda e: calib.engine(calib.ttft_overhead_ms, e)) * 1e-3
    per_token = np.asarray(input_tokens, dtype=np.float64) * calib.ttft_per_input_token_us
    return fixed + layers * calib.ttft_per_layer_us * 1e-6 + per_token * 1e-6


def sync_factor(calib: Calibration, engines: Sequence[str]) -> np.ndarray:
    """The cohort-wait factor per row (per engine)."""
    return _lookup(engines, lambda e: calib.engine(calib.sync_factor, e))


def byte_sizes(gemm: Sequence[str], moe: Sequence[str], kv: Sequence[str]) -> Bytes:
    return Bytes(
        gemm=_lookup(gemm, bytes_per_element),
        moe=_lookup(moe, bytes_per_element),
        kv=_lookup(kv, bytes_per_element),
    )
