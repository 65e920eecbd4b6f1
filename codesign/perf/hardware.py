"""Hardware as arrays: one entry per candidate, gathered from catalog systems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwmodels import System, get_system
from hwmodels.precision import get_precision

_CLASS_OF_FORMAT = {
    "fp4": "fp4",
    "nvfp4": "fp4",
    "mxfp4": "fp4",
    "int4": "fp4",
    "fp6": "fp8",
    "fp8": "fp8",
    "int8": "fp8",
    "bf16": "bf16",
    "fp16": "bf16",
    "tf32": "bf16",
    "fp32": "bf16",
}


@dataclass(frozen=True)
class HwVec:
    """Per-candidate hardware numbers (SI units: FLOP/s, bytes/s, seconds)."""

    peak_gemm: np.ndarray  # dense peak for the GEMM precision (after fallback)
    peak_moe: np.ndarray  # dense peak for the expert precision
    peak_attn: np.ndarray  # 16-bit peak (attention math)
    gemm_class: np.ndarray  # object: "bf16" | "fp8" | "fp4" compute class used
    moe_class: np.ndarray
    mem_bw: np.ndarray
    mem_bytes: np.ndarray  # usable device memory per chip
    su_bw: np.ndarray  # scale-up bytes/s per direction per chip
    su_lat: np.ndarray
    su_domain: np.ndarray
    so_bw: np.ndarray  # scale-out NIC bytes/s per direction per chip
    so_lat: np.ndarray

    def __len__(self) -> int:
        return len(self.mem_bw)


def _one(system: System, gemm: str, moe: str) -> tuple:
    chip = system.chip
    gfmt = chip.compute_format_for(get_precision(gemm))
    mfmt = chip.compute_format_for(get_precision(moe))
    attn = chip.compute_format_for(get_precision("bf16"))
    so = system.fabric.scale_out
    link = system.fabric.scale_up.link
    return (
        chip.peak_dense_tflops[gfmt] * 1e12,
        chip.peak_dense_tflops[mfmt] * 1e12,
        chip.peak_dense_tflops[attn] * 1e12,
        _CLASS_OF_FORMAT.get(gfmt, "bf16"),
        _CLASS_OF_FORMAT.get(mfmt, "bf16"),
        chip.memory_bandwidth_bytes_per_s,
        chip.memory_capacity_bytes,
        link.bandwidth_bytes_per_s,
        link.latency_us * 1e-6,
        system.scale_up_domain,
        so.bandwidth_bytes_per_s if so else link.bandwidth_bytes_per_s,
        (so.latency_us if so else link.latency_us) * 1e-6,
    )


def hw_vectors(
    systems: Sequence[System | str], gemm_precisions: Sequence[str], moe_precisions: Sequence[str]
) -> HwVec:
    """Gather hardware numbers for each candidate; repeated combinations are looked up once."""
    cache: dict[tuple[str, str, str], tuple] = {}
    rows = []
    for s, g, m in zip(systems, gemm_precisions, moe_precisions, strict=True):
        system = get_system(s) if isinstance(s, str) else s
        key = (system.name if isinstance(s, str) else str(id(system)), g, m)
        if key not in cache:
            cache[key] = _one(system, g, m)
        rows.append(cache[key])
    cols = list(zip(*rows, strict=True)) if rows else [()] * 12
    f = lambda i: np.asarray(cols[i], dtype=np.float64)  # noqa: E731
    return HwVec(
        peak_gemm=f(0),
        peak_moe=f(1),
        peak_attn=f(2),
        gemm_class=np.asarray(cols[3], dtype=object),
        moe_class=np.asarray(cols[4], dtype=object),
        mem_bw=f(5),
        mem_bytes=f(6),
        su_bw=f(7),
        su_lat=f(8),
        su_domain=f(9),
        so_bw=f(10),
        so_lat=f(11),
    )
