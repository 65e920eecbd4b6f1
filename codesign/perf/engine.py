"""Assemble per-candidate efficiencies and byte sizes from a calibration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.perf.calibration import Calibration
from codesign.perf.hardware import HwVec
from codesign.perf.profile import bytes_per_element
from codesign.perf.step import Bytes, Efficiency

DEFAULT_CHUNK_TOKENS = 8192  # max tokens per step (TRT-LLM max_num_tokens, SGLang/vLLM chunk)


def efficiency(calib: Calibration, hw: HwVec, engines: Sequence[str]) -> Efficiency:
    eng = np.asarray(engines, dtype=object)
    uniq = {e: calib.engine(calib.layer_overhead_us, e) for e in set(eng)}
    layer = np.array([uniq[e] for e in eng]) * 1e-6
    step = np.array([calib.engine(calib.step_overhead_ms, e) for e in eng]) * 1e-3
    gmax = np.array([calib.gemm_eff_max[c] for c in hw.gemm_class])
    mmax = np.array([calib.gemm_eff_max[c] for c in hw.moe_class])
    return Efficiency(
        gemm_max=gmax,
        moe_max=mmax,
        m_half=calib.gemm_m_half_tokens,
        attn=calib.attn_eff,
        decode_attn=calib.decode_attn_eff,
        mem=calib.mem_eff,
        comm=calib.comm_eff,
        comm_latency_s=calib.comm_latency_us * 1e-6,
        layer_overhead_s=layer,
        step_overhead_s=step,
        moe_imbalance=calib.moe_imbalance,
    )


def ttft_overhead_s(calib: Calibration, engines: Sequence[str]) -> np.ndarray:
    return np.array([calib.engine(calib.ttft_overhead_ms, e) for e in engines]) * 1e-3


def byte_sizes(gemm: Sequence[str], moe: Sequence[str], kv: Sequence[str]) -> Bytes:
    cache: dict[str, float] = {}

    def bpe(names: Sequence[str]) -> np.ndarray:
        out = []
        for n in names:
            if n not in cache:
                cache[n] = bytes_per_element(n)
            out.append(cache[n])
        return np.asarray(out, dtype=np.float64)

    return Bytes(gemm=bpe(gemm), moe=bpe(moe), kv=bpe(kv))
