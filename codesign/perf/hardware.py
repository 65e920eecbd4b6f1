"""Hardware as arrays: one entry per candidate, gathered from catalog systems."""

from __future__ import annotations

import dataclasses
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
    host_bw: np.ndarray  # bytes/s per chip from the host-memory KV tier (0: none)
    storage_bw: np.ndarray  # bytes/s per chip from the node's NVMe KV tier (0: none)
    # bytes/s per chip from a KV store shared by the deployment's workers: a property of
    # the deployment, not the system (``with_shared_store``; 0: none)
    shared_bw: np.ndarray | float = 0.0

    def __len__(self) -> int:
        return len(self.mem_bw)


def _one(system: System, gemm: str, moe: str) -> tuple:
    chip = system.chip
    gfmt = chip.compute_format_for(get_precision(gemm))
    mfmt = chip.compute_format_for(get_precision(moe))
    attn = chip.compute_format_for(get_precision("bf16"))
    so = system.fabric.scale_out
    link = system.fabric.scale_up.link
    host = system.host_kv_tier()
    host_bw = host.bandwidth_bytes_per_s_per_chip if host else 0.0
    storage = system.storage_kv_tier()
    storage_bw = storage.bandwidth_bytes_per_s_per_chip if storage else 0.0
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
        host_bw,
        storage_bw,
    )


def with_shared_store(hw: HwVec, read_bytes_per_s: np.ndarray, chips: np.ndarray) -> HwVec:
    """``hw`` with the shared KV store's read rate per chip: its aggregate bandwidth shared
    by the ``chips`` that read it (the prefilling ones, all at once: a conservative fair
    share), at most the chip's scale-out NIC rate."""
    share = np.asarray(read_bytes_per_s, dtype=np.float64) / np.maximum(chips, 1.0)
    return dataclasses.replace(hw, shared_bw=np.minimum(share, hw.so_bw))


def hw_vectors_indexed(
    systems: Sequence[System], index: np.ndarray, gemm: np.ndarray, moe: np.ndarray
) -> HwVec:
    """Like ``hw_vectors`` for candidates given as indices into ``systems``."""
    g_u, g_i = np.unique(np.asarray(gemm, dtype=str), return_inverse=True)
    m_u, m_i = np.unique(np.asarray(moe, dtype=str), return_inverse=True)
    key = (np.asarray(index, dtype=np.int64) * len(g_u) + g_i) * len(m_u) + m_i
    uniq, inverse = np.unique(key, return_inverse=True)
    table = []
    for k in uniq:
        s, rest = divmod(int(k), len(g_u) * len(m_u))
        gi, mi = divmod(rest, len(m_u))
        table.append(_one(systems[s], str(g_u[gi]), str(m_u[mi])))
    cols = list(zip(*table, strict=True))

    def col(i: int, dtype: type = np.float64) -> np.ndarray:
        return np.asarray(cols[i], dtype=dtype)[inverse]

    return HwVec(
        peak_gemm=col(0),
        peak_moe=col(1),
        peak_attn=col(2),
        gemm_class=col(3, object),
        moe_class=col(4, object),
        mem_bw=col(5),
        mem_bytes=col(6),
        su_bw=col(7),
        su_lat=col(8),
        su_domain=col(9),
        so_bw=col(10),
        so_lat=col(11),
        host_bw=col(12),
        storage_bw=col(13),
    )


def hw_vectors(
    systems: Sequence[System | str], gemm_precisions: Sequence[str], moe_precisions: Sequence[str]
) -> HwVec:
    """Gather hardware numbers for each candidate (systems by object or catalog name)."""
    table: list[System] = []
    where: dict[str, int] = {}
    index = np.empty(len(systems), dtype=np.int64)
    for i, s in enumerate(systems):
        key = s if isinstance(s, str) else f"{s.name}@{id(s)}"
        if key not in where:
            where[key] = len(table)
            table.append(get_system(s) if isinstance(s, str) else s)
        index[i] = where[key]
    return hw_vectors_indexed(
        table,
        index,
        np.asarray(gemm_precisions, dtype=object),
        np.asarray(moe_precisions, dtype=object),
    )
