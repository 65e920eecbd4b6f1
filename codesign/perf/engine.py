"""Assemble per-candidate efficiencies and byte sizes from a calibration."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from codesign.perf.calibration import Calibration
from codesign.perf.hardware import HwVec
from codesign.perf.profile import bytes_per_element
from codesign.perf.step import Bytes, Efficiency

DEFAULT_CHUNK_TOKENS = 8192  # max tokens per step (TRT-LLM max_num_tokens, SGLang/vLLM chunk)

# Engines that run prefills as batches of their own between decode steps: SGLang by default
# (its scheduler alternates prefill and decode batches; prefill chunks ride in a decode
# batch only with --enable-mixed-chunk). TRT-LLM's in-flight batching and vLLM's unified
# scheduler put prefill chunks into the decode steps, where the weights stream once for
# both.
PREFILL_OWN_BATCH = frozenset({"sglang"})

# Host time per layer to launch an eager step's kernels (Python, the framework dispatcher
# and one cudaLaunchKernel per kernel; about a dozen kernels per decoder layer). From one
# public measurement: Llama-3.1-8B (32 layers) on an H100 SXM, a batch-1 decode step takes
# 8.4 ms eager and 5.1 ms replayed as a CUDA graph (cloudai.pt, "CUDA Graphs +
# torch.compile: 1.65x LLM Decode Speedup"). The eager step is host-bound, so the host
# needs 8.4 ms / 32 layers. The calibrated rows all ran with CUDA graphs, so none of them
# constrains it; a lent GPU should measure it per engine.
EAGER_HOST_US_PER_LAYER = 8.4e3 / 32


def per_key(keys: Sequence[str] | np.ndarray, table: Callable[[str], float]) -> np.ndarray:
    """table(key) for every key, calling ``table`` once per distinct key."""
    uniq, inverse = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
    return np.array([table(str(k)) for k in uniq], dtype=np.float64)[inverse]


def efficiency(
    calib: Calibration,
    hw: HwVec,
    engines: Sequence[str],
    eager: np.ndarray | bool | None = None,
) -> Efficiency:
    """Per-candidate efficiencies; ``eager``: steps launched kernel by kernel instead of
    replayed as CUDA graphs (per candidate or for all; default: CUDA graphs, as the
    calibration rows ran)."""
    host = 0.0 if eager is None else np.where(eager, EAGER_HOST_US_PER_LAYER * 1e-6, 0.0)
    layer = per_key(engines, lambda e: calib.engine(calib.layer_overhead_us, e)) * 1e-6
    step = per_key(engines, lambda e: calib.engine(calib.step_overhead_ms, e)) * 1e-3
    gmax = per_key(hw.gemm_class, calib.gemm_eff_max.__getitem__)
    mmax = per_key(hw.moe_class, calib.gemm_eff_max.__getitem__)
    return Efficiency(
        gemm_max=gmax,
        moe_max=mmax,
        m_half=calib.gemm_m_half_tokens,
        moe_m_half=calib.moe_m_half_tokens,
        attn=calib.attn_eff,
        attn_half_tokens=calib.attn_half_tokens,
        decode_attn=calib.decode_attn_eff,
        mem=calib.mem_eff,
        comm=calib.comm_eff,
        comm_latency_s=calib.comm_latency_us * 1e-6,
        layer_overhead_s=layer,
        step_overhead_s=step,
        moe_imbalance=calib.moe_imbalance,
        expert_skew=calib.expert_skew,
        moe_layer_overhead_s=calib.moe_layer_overhead_us * 1e-6,
        eager_host_s=host,
    )


def ttft_overhead_s(
    calib: Calibration,
    engines: Sequence[str],
    layers: float = 0,
    input_tokens: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Request handling outside the engine steps: a fixed part per engine, a part per layer
    (the first token's prefill and decode launches scale with depth) and a part per
    uncached prompt token (``input_tokens``: request-path work that grows with the prompt
    to prefill; see ``Calibration``)."""
    fixed = per_key(engines, lambda e: calib.engine(calib.ttft_overhead_ms, e)) * 1e-3
    per_token = np.asarray(input_tokens, dtype=np.float64) * calib.ttft_per_input_token_us
    return fixed + layers * calib.ttft_per_layer_us * 1e-6 + per_token * 1e-6


def sync_factor(calib: Calibration, engines: Sequence[str]) -> np.ndarray:
    """The cohort-wait factor per row (per engine)."""
    return per_key(engines, lambda e: calib.engine(calib.sync_factor, e))


def byte_sizes(
    gemm: Sequence[str],
    moe: Sequence[str],
    kv: Sequence[str],
    kv_stored: Sequence[str] | None = None,
) -> Bytes:
    """Bytes per element of each format (``kv_stored``: the cache's storage format where it
    differs from the format attention reads, ``Bytes.kv_stored``)."""
    stored = None if kv_stored is None else per_key(kv_stored, bytes_per_element)
    return Bytes(
        gemm=per_key(gemm, bytes_per_element),
        moe=per_key(moe, bytes_per_element),
        kv=per_key(kv, bytes_per_element),
        kv_stored=stored,
    )


def prefill_work_s(
    engines: np.ndarray | list[str],
    own_step_s: np.ndarray,
    decode_step_s: np.ndarray,
    chunks: np.ndarray,
    prefill: dict[str, np.ndarray],
) -> np.ndarray:
    """Decode-step time one request's prefill takes from the worker (what stretches
    TPOT and what later requests queue behind). In a mixed step (TRT-LLM, vLLM) it is
    what each chunk adds to the decode step it rides, ``own_step_s - decode_step_s`` per
    chunk: the weights stream once for both, so a short prompt on a big MoE adds little
    more than its FLOPs. It is at most the prefill on its own, which an engine that runs
    prefills as batches of their own (``PREFILL_OWN_BATCH``, SGLang) pays in full (less
    the step's fixed overhead)."""
    alone = prefill["total"] - prefill["fixed"]
    mixed = np.minimum(np.maximum(own_step_s - decode_step_s, 0.0) * chunks, alone)
    own_batch = np.isin(np.asarray(engines, dtype=str), sorted(PREFILL_OWN_BATCH))
    return np.where(own_batch, alone, mixed)
