"""The device memory each serving engine gives its KV cache, per GPU, vectorised.

Each engine sizes its cache from one setting, and ``codesign export`` writes that setting
with the value modelled here, so a deployment runs with the cache its prediction assumed
(``M``: the GPU's memory, ``W``: the weights on it):

- vLLM: ``--gpu-memory-utilization`` (its default, 0.9) bounds the weights, the profiling
  run's activations and the KV cache together, so the cache gets ``0.9 M - W`` less the
  activation peak (about 1 GB for an 8K-token step; left out).
- SGLang: ``--mem-fraction-static`` bounds the weights and the KV pool. SGLang's own
  default (``ServerArgs._handle_gpu_memory_settings``) leaves, in MiB, 512 + 1.5 per token
  of the prefill chunk + 2 per CUDA-graph batch slot + 1,024 per 8 GPUs of tp x pp (+ 3 per
  graph slot per attention-DP rank), at least 10 GiB on a GPU of more than 60 GiB, and
  2 GiB more for an EAGLE / MTP draft model, for activations, graphs and the runtime;
  rounded to 3 decimals. The model takes 8K-token chunks (``DEFAULT_CHUNK_TOKENS``) and
  256 graph slots, or a pool's own ``max_batch_tokens`` and ``max_batch``
  (``pool_memory_fraction``): 14 GiB of an 80-GB H100 at tp 8 (fraction 0.824) against
  the 4 GB a flat 5 % would leave. Newer SGLang picks 16K chunks and 512 slots on GPUs over 160 GiB
  (and 512 slots at tp-size >= 4), which would leave DeepSeek-R1 FP8 at tp 4 on B200s
  (172 GB of weights per GPU) no room for its weights, yet the dev rows measured it with
  SGLang 0.5.9: the benchmark recipes set their own fraction, so the rows cannot decide the
  default, and ``codesign export`` writes the fraction explicitly either way.
- TRT-LLM: ``kv_cache_config.free_gpu_memory_fraction`` (its default, 0.9) of what the
  weights and the runtime leave (the runtime taken as 5 % of the GPU): ``0.9 (0.95 M - W)``.
- Any other engine: 5 % of the GPU for the runtime, the rest after the weights.

A deployment may set the engine's own fraction per pool (``Pool.memory_fraction``); it
replaces the default in that engine's rule (NaN: the default).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from codesign.perf.engine import DEFAULT_CHUNK_TOKENS

if TYPE_CHECKING:
    from codesign.deployment import Pool

RUNTIME_RESERVE_FRACTION = 0.05  # activations, CUDA graphs, allocator and runtime
VLLM_GPU_MEMORY_UTILIZATION = 0.9  # vLLM --gpu-memory-utilization
TRTLLM_FREE_GPU_MEMORY_FRACTION = 0.9  # TRT-LLM kv_cache_config.free_gpu_memory_fraction
SGLANG_GRAPH_BATCH = 256  # CUDA-graph batch slots SGLang captures
SGLANG_DRAFT_RESERVE_MIB = 2048.0  # an EAGLE / MTP draft model and its CUDA graphs

_MIB = float(2**20)
_GIB = float(2**30)


def sglang_mem_fraction_static(
    mem_bytes: np.ndarray | float,
    tp: np.ndarray | float,
    pp: np.ndarray | float = 1.0,
    dp: np.ndarray | float = 1.0,
    draft: np.ndarray | bool = False,
    chunk_tokens: float = DEFAULT_CHUNK_TOKENS,
    graph_batch: float = SGLANG_GRAPH_BATCH,
) -> np.ndarray:
    """SGLang's default ``--mem-fraction-static`` (module docstring) for a worker of
    ``tp x dp`` GPUs per pipeline stage (SGLang's ``--tp-size`` is tp x dp with attention
    DP), ``pp`` stages, with a speculative draft model where ``draft``."""
    mem = np.asarray(mem_bytes, dtype=np.float64)
    tp, pp, dp = (np.asarray(x, dtype=np.float64) for x in (tp, pp, dp))
    mib = 512.0 + 1.5 * max(chunk_tokens, 2048.0) + 2.0 * graph_batch
    mib = mib + 1024.0 * tp * dp * pp / 8.0 + np.where(dp > 1, 3.0 * graph_batch * dp, 0.0)
    reserved = mib * _MIB
    reserved = np.where(mem > 60 * _GIB, np.maximum(reserved, 10 * _GIB), reserved)
    reserved = reserved + np.where(draft, SGLANG_DRAFT_RESERVE_MIB * _MIB, 0.0)
    return np.round(np.clip(1.0 - reserved / np.maximum(mem, 1.0), 0.0, 1.0), 3)


def kv_budget_bytes(
    engines: Sequence[str] | np.ndarray | None,
    mem_bytes: np.ndarray,
    weights_bytes: np.ndarray,
    tp: np.ndarray,
    pp: np.ndarray,
    dp: np.ndarray,
    fraction: np.ndarray | float | None = None,
    draft: np.ndarray | bool | None = None,
) -> np.ndarray:
    """Bytes per GPU each engine's KV cache gets after the weights (< 0: the weights do not
    fit in the share the engine allows them). ``engines`` None: the generic 5 % reserve.
    ``fraction``: the engine's memory setting per candidate (NaN or None: its default);
    ``draft``: a speculative draft model runs beside the target (SGLang reserves for it)."""
    mem = np.asarray(mem_bytes, dtype=np.float64)
    w = np.asarray(weights_bytes, dtype=np.float64)
    generic = mem * (1.0 - RUNTIME_RESERVE_FRACTION) - w
    if engines is None:
        return generic
    e = np.broadcast_to(np.asarray(engines, dtype=str), generic.shape)
    f = np.broadcast_to(np.asarray(np.nan if fraction is None else fraction, float), e.shape)
    given = ~np.isnan(f)
    vllm = mem * np.where(given, f, VLLM_GPU_MEMORY_UTILIZATION) - w
    sglang_default = sglang_mem_fraction_static(mem, tp, pp, dp, False if draft is None else draft)
    sglang = mem * np.where(given, f, sglang_default) - w
    trt_f = np.where(given, f, TRTLLM_FREE_GPU_MEMORY_FRACTION)
    trtllm = np.where(generic > 0, trt_f * generic, generic)
    return np.select([e == "vllm", e == "sglang", e == "trtllm"], [vllm, sglang, trtllm], generic)


def memory_fraction(
    engine: str,
    mem_bytes: float,
    tp: int,
    pp: int = 1,
    dp: int = 1,
    fraction: float | None = None,
    draft: bool = False,
    chunk_tokens: int | None = None,
    graph_batch: int | None = None,
) -> float | None:
    """The value of the engine's memory setting (``memory_setting``) for a worker of ``tp x
    dp`` GPUs per stage, ``pp`` stages, on GPUs of ``mem_bytes`` (with a speculative draft
    model where ``draft``): ``fraction`` where the deployment sets it, else the engine's
    default (None: an engine without one); SGLang's default covers the prefill chunk and
    the CUDA-graph batch the pool runs (``chunk_tokens``, ``graph_batch``; None: 8K and
    256)."""
    if engine not in ("vllm", "sglang", "trtllm"):
        return None
    if fraction is not None:
        return float(fraction)
    if engine == "vllm":
        return VLLM_GPU_MEMORY_UTILIZATION
    if engine == "trtllm":
        return TRTLLM_FREE_GPU_MEMORY_FRACTION
    chunk = chunk_tokens or DEFAULT_CHUNK_TOKENS
    graph = graph_batch or SGLANG_GRAPH_BATCH
    return float(sglang_mem_fraction_static(mem_bytes, tp, pp, dp, draft, chunk, graph))


def pool_memory_fraction(engine: str, mem_bytes: float, pool: Pool, draft: bool) -> float:
    """A deployment pool's memory setting (``memory_fraction``) on GPUs of ``mem_bytes``:
    its own, else the engine's default for its layout, SGLang's for its chunk
    (``max_batch_tokens``) and CUDA-graph batch (``max_batch``); NaN for an engine without
    one. What the candidates, the simulator's pools and the export take."""
    par = pool.parallel
    value = memory_fraction(
        engine,
        mem_bytes,
        par.tp,
        par.pp,
        par.dp,
        pool.memory_fraction,
        draft,
        pool.max_batch_tokens,
        pool.max_batch,
    )
    return np.nan if value is None else value


SETTING_NAMES = {
    "vllm": "gpu_memory_utilization",
    "sglang": "mem_fraction_static",
    "trtllm": "free_gpu_memory_fraction",
}


def memory_setting(engine: str, value: float | None) -> str:
    """The engine setting at ``value`` (``memory_fraction``) as name=value: what ``codesign
    export`` writes."""
    if value is None:
        return f"runtime reserve {RUNTIME_RESERVE_FRACTION:g} of the GPU"
    return f"{SETTING_NAMES[engine]}={value:g}"
