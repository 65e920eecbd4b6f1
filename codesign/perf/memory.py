"""Memory per GPU of a worker: weights, KV cache and reserves, vectorised.

Sharding (as the step model assumes): attention, dense and shared-expert weights split
over tp (replicated over attention-DP ranks), routed experts over moe_ep x moe_tp,
embeddings and lm_head over tp, all layers over pp. The KV cache of a GQA model splits
its heads over tp (replicated when tp exceeds the KV heads); an MLA latent is replicated
on every tp rank. What the KV cache gets of the memory the weights leave is the engine's
rule (``kv_budget``): activations, CUDA graphs, the allocator and the runtime take the
rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codesign.perf.kv_budget import kv_budget_bytes
from codesign.perf.profile import ModelProfile
from codesign.perf.step import Bytes, Layout

# Engines whose scheduler reserves a request's whole KV (prompt + max new tokens) when it
# admits it: TRT-LLM's default capacity policy, GUARANTEED_NO_EVICT. vLLM and SGLang page
# the KV in blocks as sequences grow and admit against what is in use (preempting or
# retracting a sequence when the blocks run out).
RESERVES_MAX_TOKENS = frozenset({"trtllm"})


@dataclass(frozen=True)
class MemoryUse:
    weights_bytes_per_gpu: np.ndarray
    kv_bytes_per_token_per_gpu: np.ndarray
    free_bytes_per_gpu: np.ndarray  # for KV after weights and reserve (may be < 0)
    kv_tokens_per_worker: np.ndarray  # over all attention-DP ranks of the worker
    fits: np.ndarray
    # a sequence's recurrent state (linear-attention / Mamba layers), which it holds in
    # device memory beside its KV, in KV-token equivalents on one GPU (0: none)
    state_tokens_per_seq: np.ndarray | float = 0.0


def memory_use(
    prof: ModelProfile,
    lay: Layout,
    nb: Bytes,
    mem_bytes: np.ndarray,
    kv_elems_per_token: float,
    engines: Sequence[str] | np.ndarray | None = None,
    fraction: np.ndarray | float | None = None,
    draft: np.ndarray | bool | None = None,
) -> MemoryUse:
    """Weights and KV capacity per GPU; ``engines`` (one per candidate, or one for all)
    set how much of the memory the KV cache gets (``kv_budget``; None: a generic 5 %
    runtime reserve), at the engine's memory ``fraction`` where a deployment sets it
    (NaN or None: the engine's default), with a speculative ``draft`` model beside the
    target where set."""
    dense = prof.p_every_token
    # the embedding and the lm_head: two matrices, one where the checkpoint ties them
    vocab_copies = 1.0 if prof.tied_embeddings else 2.0
    w = (dense * nb.gemm + vocab_copies * prof.p_lm_head * nb.gemm) / (lay.tp * lay.pp)
    w = w + prof.p_routed_total * nb.moe / (lay.moe_ep * lay.moe_tp * lay.pp)
    split = prof.kv_split(lay.tp)
    kv_tok = kv_elems_per_token * nb.kv_store / (split * lay.pp)
    free = kv_budget_bytes(engines, mem_bytes, w, lay.tp, lay.pp, lay.dp, fraction, draft)
    tokens = np.where(free > 0, free / np.maximum(kv_tok, 1e-9), 0.0) * lay.dp
    # the state's heads split over tp as the attention heads do, its layers over pp
    state = prof.state_bytes_per_seq / (lay.tp * lay.pp)
    state_tokens = state / np.maximum(kv_tok, 1e-9)
    return MemoryUse(w, kv_tok, free, np.floor(tokens), free > 0, state_tokens)


def weights_misfit(use: MemoryUse, mem_bytes: np.ndarray, engine: str, j: int = 0) -> str:
    """Why candidate ``j``'s weights do not fit: what they need against the share of the
    GPU the engine lets weights and KV cache take (``kv_budget``)."""
    w = float(use.weights_bytes_per_gpu[j])
    share = float(use.free_bytes_per_gpu[j]) + w
    return (
        f"weights need {w / 1e9:.1f} GB per GPU; {engine} leaves weights and the KV cache "
        f"{share / 1e9:.1f} of the GPU's {float(mem_bytes[j]) / 1e9:.1f} GB"
    )


def kv_tokens_held_per_seq(
    engines: np.ndarray | list[str], isl: np.ndarray, osl: np.ndarray
) -> np.ndarray:
    """KV tokens one running sequence takes from the cache when the scheduler decides
    whether another fits: the whole isl + osl for an engine that reserves it up front
    (``RESERVES_MAX_TOKENS``); for a paged engine the mean of what the running sequences
    hold, isl + osl / 2 (decoding sequences are spread evenly over their output).
    Llama-3.1-70B FP8 on one B200 at 1K/8K: vLLM measured 0.38 s TTFT at 64 clients (its
    cache holds 122 at the mean, 5.1K tokens each), TRT-LLM 137 s at 128 (queued: its
    cache holds 66 sequences of 9.2K tokens)."""
    isl = np.asarray(isl, dtype=np.float64)
    osl = np.asarray(osl, dtype=np.float64)
    upfront = np.isin(np.asarray(engines, dtype=str), sorted(RESERVES_MAX_TOKENS))
    return isl + np.where(upfront, osl, osl / 2.0)


def kv_slots_per_rank(
    kv_tokens_per_worker: np.ndarray,
    dp: np.ndarray,
    engines: np.ndarray | list[str],
    isl: np.ndarray,
    osl: np.ndarray,
    state_tokens: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Sequences one attention-DP rank's KV cache holds at the engine's admission
    (``kv_tokens_held_per_seq``, plus the recurrent state of a hybrid model, in token
    equivalents), at least one (``holds_one_sequence`` says whether it really does)."""
    held = kv_tokens_held_per_seq(engines, isl, osl) + state_tokens
    return np.maximum(np.floor(kv_tokens_per_worker / dp / held), 1.0)


def holds_one_sequence(
    kv_tokens_per_worker: np.ndarray,
    dp: np.ndarray,
    tokens: np.ndarray,
    state_tokens: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Whether one attention-DP rank's cache holds a single sequence of ``tokens`` tokens
    (and its recurrent state): a request that cannot fit even alone cannot be served."""
    return kv_tokens_per_worker / np.maximum(dp, 1.0) >= tokens + state_tokens
