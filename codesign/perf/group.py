"""Per-candidate inputs of the serving model: row precisions, worker layouts, step loads,
and the `Group` record (one model's rows with everything calibration-independent resolved).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.errors import NotFoundError
from codesign.perf.hardware import HwVec
from codesign.perf.profile import ModelProfile
from codesign.perf.step import Bytes, Layout, StepLoad
from codesign.serving.adp_balance import RECIPE_TIMEOUT_ITERS
from codesign.validation.silicon import SiliconRows
from hwmodels.precision import get_precision

_QUANT = {
    "fp8_block": "fp8_block",
    "fp8": "fp8",
    "fp8_ootb": "fp8",  # FP8 GEMMs with per-tensor scales, as the checkpoint ships them
    "nvfp4": "nvfp4",
    "fp4": "nvfp4",
    "int4_wo": "int4_wo",
    "bf16": "bf16",
    "fp16": "fp16",
    "w4a8_awq": "nvfp4",
    # other names benchmark tables use for the same formats
    "float16": "fp16",
    "mxfp4": "mxfp4",
    "w4a16_mxfp4": "mxfp4",
    "w4a8_mxfp4_fp8": "mxfp4",  # MXFP4 experts with FP8/MXFP8 activations
    "w4a8_mxfp4_mxfp8": "mxfp4",
    "mxfp8": "mxfp8",
    "w4afp8": "nvfp4",  # 4-bit weights, 8-bit activations: stored like a 4-bit format
    "sq": "int8",  # SmoothQuant W8A8
    "int8": "int8",
    "int8_wo": "int8_wo",
}

OPEN_LOOP_QUEUE_FACTOR = 0.5  # M/D/1: equal prompts, Poisson arrivals


def read_quant(name: str | None) -> str | None:
    """The hwmodels precision a format name in a row or request means (the names above,
    then hwmodels' own names and aliases, any case); None when it names none."""
    key = (name or "").strip().lower()
    if not key:
        return None
    if key in _QUANT:
        return _QUANT[key]
    try:
        return get_precision(key).name
    except NotFoundError:
        return None


def is_quant_name(name: str) -> bool:
    """Whether ``row_precisions`` reads ``name`` as a format (an unknown name in a measured
    row falls back to the checkpoint's own precision; a user's request should not)."""
    return read_quant(name) is not None


QUANT_NAMES: tuple[str, ...] = tuple(sorted(_QUANT))


def row_precisions(
    gemm_q: str, moe_q: str, precision: str, backend: str, prof: ModelProfile
) -> tuple[str, str, str]:
    """(GEMM, expert, KV) precisions a measured row ran with."""
    g = read_quant(gemm_q or precision) or prof.native_gemm
    m = read_quant(moe_q) or (g if gemm_q else prof.native_moe)
    # TRT-LLM serves quantised checkpoints with an FP8 KV cache, and any checkpoint whose
    # hf_quant_config declares kv_cache_quant_algo FP8 (an NVFP4 checkpoint that keeps its
    # attention in BF16, GLM-5.1's, still caches FP8); vLLM and SGLang read at the model
    # dtype (what their caches store: ``stored_kv_precision``).
    kv = "fp8" if backend == "trtllm" and _quantised(g, prof) else "bf16"
    return g, m, kv


def _quantised(gemm: str, prof: ModelProfile) -> bool:
    return gemm in ("fp8", "fp8_block", "nvfp4") or prof.native_kv == "fp8"


def stored_kv_precision(gemm: str, kv: str, prof: ModelProfile) -> str:
    """The format a measured row's KV cache holds its entries in, where ``row_precisions``
    gave ``gemm`` and ``kv`` (the format attention reads): FP8 for a quantised checkpoint
    on every engine (NVIDIA's ModelOpt checkpoints declare ``kv_cache_quant_algo`` FP8,
    which vLLM honours since its PR #29980, December 2025). The vLLM and SGLang rows decode
    about as many sequences at once as an FP8 cache holds (MiniMax-M2.5 FP8 on two B200s at
    8K/1K, 128 and 256 clients: 103 and 110 by Little's law, where a BF16 cache holds 61 and
    an FP8 one 123), and rows that a BF16 cache would queue measured no such wait
    (MiniMax-M2.5 FP8 on four B300s, 8K/1K, 512 clients: 3.3 s TTFT; queued behind a BF16
    cache the model gave 25.7 s). Their TPOT shows no FP8-read speed-up, so they are charged
    the BF16 read (``kv``; refitted with FP8 reads too, held out by system TTFT 31.4% /
    TPOT 14.7% and by model 32.8% / 14.9% against 30.9% / 14.7% and 32.7% / 14.7%); SGLang
    documents its quantised cache as a capacity feature whose dequantisation can eat the
    bandwidth saving. TRT-LLM's kernels read the FP8 entries themselves (``kv`` is FP8)."""
    return "fp8" if _quantised(gemm, prof) else kv


def _f(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def make_layout(tp, dp, moe_tp, moe_ep, pp, is_moe: bool) -> Layout:
    """A worker layout; missing MoE sizes (0) mean experts sharded like attention."""
    tp, dp, pp = _f(tp), np.maximum(_f(dp), 1), np.maximum(_f(pp), 1)
    moe_tp, moe_ep = _f(moe_tp), _f(moe_ep)
    if is_moe:
        missing = (moe_tp <= 0) & (moe_ep <= 0)
        moe_ep = np.where(missing, tp * dp, np.maximum(moe_ep, 1))
        moe_tp = np.where(missing, 1, np.maximum(moe_tp, 1))
    else:
        moe_tp, moe_ep = tp * dp, np.ones_like(tp)
    return Layout(tp=tp, dp=dp, moe_tp=moe_tp, moe_ep=moe_ep, pp=pp)


def make_load(
    n_dec, ctx_dec, n_pf, ctx_pf, pf_seqs, host_kv=0.0, storage_kv=0.0, shared_kv=0.0
) -> StepLoad:
    return StepLoad(
        *np.broadcast_arrays(
            _f(n_dec),
            _f(ctx_dec),
            _f(n_pf),
            _f(ctx_pf),
            _f(pf_seqs),
            _f(host_kv),
            _f(storage_kv),
            _f(shared_kv),
        )
    )


def take(obj: object, i: np.ndarray) -> object:
    """Index every 1-d array field of a dataclass record."""
    vals = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        v = getattr(obj, f.name)
        vals[f.name] = v[i] if isinstance(v, np.ndarray) and v.ndim == 1 else v
    return type(obj)(**vals)


@dataclass(frozen=True)
class Group:
    """Rows of one model with everything calibration-independent resolved."""

    index: np.ndarray  # positions in the full row set
    rows: SiliconRows
    prof: ModelProfile
    kv_elems_per_token: float
    hw: HwVec
    nb: Bytes
    hw_decode: HwVec | None = None  # decode pool hardware when it differs (disagg)
    # per candidate: the decode pool is another system than the prefill pool (None: every
    # candidate where ``hw_decode`` is given); pools of one system can share a domain
    decode_system_differs: np.ndarray | None = None
    # running sequences an aggregated rank may hold (the engine's max batch; 0: no limit
    # but the KV cache's)
    max_batch: np.ndarray | None = None
    prefix_hit: np.ndarray | None = None  # cached fraction of each prompt (default 0)
    # mean causal (query, key) pairs of a prompt's uncached tokens, where prompts differ
    # (agent traces: long contexts miss more); default: the mean prompt's
    prefill_pairs: np.ndarray | None = None
    host_share: np.ndarray | None = None  # part of the cached tokens held in host memory
    storage_share: np.ndarray | None = None  # part of the cached tokens held in NVMe storage
    shared_share: np.ndarray | None = None  # part of the cached tokens in a shared KV store
    spec_k: np.ndarray | None = None  # draft tokens per verify step (speculative decoding)
    spec_alpha: np.ndarray | None = None  # per-token acceptance probability
    arrival_rate: np.ndarray | None = None  # open loop: requests/s per deployment
    think_s: np.ndarray | None = None  # closed loop: client time between requests
    ctx_hi: np.ndarray | None = None  # a high-percentile context for a TPOT percentile
    ctx_mid: np.ndarray | None = None  # the median context, for the median TPOT
    clients: np.ndarray | None = None  # exact (fractional) clients, see ``concurrency``
    # random-arrival queueing scale per row (default: the calibration's, fitted on
    # benchmark rows); agent workloads: M/G/1, (1 + SCV of the prefill work) / 2
    queue_factor: np.ndarray | None = None
    # steps launched kernel by kernel, without CUDA graphs (default: graphs, as the
    # calibration rows ran)
    eager: np.ndarray | None = None
    # TRT-LLM attention-DP context balancing, timeout iterations per row (0: off). Default:
    # what the measured rows' serving recipes set, on with 60 iterations for TRT-LLM
    # workers with attention DP (``codesign.serving.adp_balance``)
    adp_balance_iters: np.ndarray | None = None
    # the engine's memory setting of the KV-holding (agg or decode) and the prefill pool
    # per row (NaN: the engine's default, as the measured rows ran; ``perf.kv_budget``)
    mem_fraction: np.ndarray | None = None
    p_mem_fraction: np.ndarray | None = None

    def concurrency(self, i: np.ndarray, rows: SiliconRows) -> np.ndarray:
        """Closed-loop clients (per worker for agg rows): the exact ``clients`` where given
        (agent sessions spread over workers, a sub-agent tier's fraction of a session),
        else the rows' recorded integer concurrency."""
        return _f(rows.concurrency) if self.clients is None else self.clients[i]

    def decode_differs(self, i: np.ndarray) -> np.ndarray:
        if self.decode_system_differs is not None:
            return np.asarray(self.decode_system_differs, dtype=bool)[i]
        return np.full(len(i), self.hw_decode is not None)

    def queue(self, i: np.ndarray, calibrated: float) -> np.ndarray | float:
        """The prefill queueing factor: the group's own where given; for open-loop
        arrivals M/D/1's (Pollaczek-Khinchine, (1 + SCV) / 2 = 1/2 for equal-length
        requests), since the calibrated factor (~0) describes closed-loop benchmark rows,
        whose clients do not arrive at random; else the calibrated one."""
        if self.queue_factor is not None:
            return self.queue_factor[i]
        return OPEN_LOOP_QUEUE_FACTOR if self.arrival_rate is not None else calibrated

    def think(self, i: np.ndarray) -> np.ndarray | float:
        return 0.0 if self.think_s is None else self.think_s[i]

    def hit(self, i: np.ndarray) -> np.ndarray:
        return np.zeros(len(i)) if self.prefix_hit is None else self.prefix_hit[i]

    def attention_prefix(self, i: np.ndarray, cached: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Cached tokens the prompt's ``new`` uncached tokens attend to after, as the
        prefill's attention sees them: ``cached`` for the mean prompt; with
        ``prefill_pairs`` the prefix that gives those mean pairs, pairs / new - new / 2
        (a request with ``h`` of its ``L`` tokens cached computes ``(L^2 - h^2) / 2``
        pairs, and the mean of that is not the mean prompt's when prompts differ)."""
        if self.prefill_pairs is None:
            return cached
        return np.maximum(self.prefill_pairs[i] / new - new / 2.0, 0.0)

    def eager_at(self, i: np.ndarray) -> np.ndarray | None:
        return None if self.eager is None else self.eager[i]

    def adp_balance(self, i: np.ndarray, rows: SiliconRows, dp: np.ndarray) -> np.ndarray:
        """Attention-DP balancing timeout (iterations) of each row's worker, 0 where off."""
        if self.adp_balance_iters is not None:
            return np.where(dp > 1, self.adp_balance_iters[i], 0.0)
        on = (np.asarray(rows.backend) == "trtllm") & (dp > 1)
        return np.where(on, float(RECIPE_TIMEOUT_ITERS), 0.0)

    def memory_settings(self, i: np.ndarray, prefill: bool = False) -> dict[str, Any]:
        """``memory_use``'s engine settings for rows ``i``: the KV-holding (or, ``prefill``,
        the prefill) pool's memory fraction and whether a speculative draft model runs
        beside the target (None: the engines' defaults, no draft)."""
        frac = self.p_mem_fraction if prefill else self.mem_fraction
        return {
            "fraction": None if frac is None else frac[i],
            "draft": None if self.spec_k is None else self.spec_k[i] > 0,
        }

    def host(self, i: np.ndarray) -> np.ndarray:
        return np.zeros(len(i)) if self.host_share is None else self.host_share[i]

    def storage(self, i: np.ndarray) -> np.ndarray:
        return np.zeros(len(i)) if self.storage_share is None else self.storage_share[i]

    def shared(self, i: np.ndarray) -> np.ndarray:
        return np.zeros(len(i)) if self.shared_share is None else self.shared_share[i]
