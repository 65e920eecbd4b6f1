"""Derived quantities of a ModelArch: weight bytes, KV-cache bytes, recurrent state, FLOPs.

Token arguments accept ints or numpy arrays (vectorised); array inputs give float64 arrays.

KV cache per attention layer and token: GQA keeps K and V, ``kv_heads x (head_dim +
v_head_dim)`` elements; MLA keeps the compressed latent, ``kv_lora_rank + qk_rope_head_dim``
(DSA models add the indexer key, ``index_head_dim``). Sliding-window layers keep at most
``window`` tokens, chunked-attention layers at most ``chunk`` (an upper bound); layers may
differ in shape (``attn_layers``). Linear attention and Mamba layers keep a constant state
per sequence instead.

Attention FLOPs count 2 FLOPs per multiply-add over (query, key) pairs: QK^T costs
``2 x heads x qk_dim`` and PV ``2 x heads x v_dim`` per pair. MLA prefill uses the
non-absorbed form (qk_dim = nope + rope, v_dim = v_head_dim); MLA decode the absorbed form
over the latent (qk_dim = kv_lora + rope, v_dim = kv_lora), as serving engines run it.
DSA layers attend to at most ``index_topk`` keys, plus the indexer over all keys.
Linear projections cost 2 x active_gemm parameters per token (lm_head included for every
token). Recurrent mixers cost ~6 x heads x k_dim x v_dim (gated DeltaNet) or
6 x heads x head_dim x state (Mamba-2) per token, plus the causal conv.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from codesign.models.arch import ModelArch, WeightPrecisions
from codesign.models.attn_layers import attention_groups, flops_per_pair, kv_elems_per_entry
from codesign.models.attn_layers import attention_pairs as attention_pairs  # re-exported
from codesign.models.params import ParamCounts, param_counts
from hwmodels.precision import get_precision

TokenArg = int | float | np.ndarray

# Which WeightPrecisions field stores each parameter component.
_COMPONENT_FIELD: dict[str, str] = {
    "embeddings": "embeddings",
    "lm_head": "lm_head",
    "attention": "attention",
    "linear_attention": "recurrent",
    "mamba": "recurrent",
    "dense_mlp": "dense_mlp",
    "routed_experts": "experts",
    "shared_experts": "shared_experts",
    "router": "router",
    "norms": "norms",
}
# Fields a single precision name overrides (GEMM weights); embeddings/norms/router stay.
_GEMM_FIELDS = ("attention", "recurrent", "dense_mlp", "experts", "shared_experts")


def _bpe(name: str) -> float:
    return get_precision(name).bytes_per_element


def resolve_precisions(
    arch: ModelArch, weight_precision: str | Mapping[str, str] | WeightPrecisions | None
) -> WeightPrecisions:
    """Checkpoint precisions, overridden by one name (GEMM weights) or a field mapping."""
    base = arch.precision
    if weight_precision is None:
        return base
    if isinstance(weight_precision, WeightPrecisions):
        return weight_precision
    if isinstance(weight_precision, str):
        get_precision(weight_precision)  # validate the name
        return base.model_copy(update=dict.fromkeys(_GEMM_FIELDS, weight_precision))
    unknown = set(weight_precision) - set(WeightPrecisions.model_fields)
    if unknown:
        raise ValueError(f"unknown precision components {sorted(unknown)}")
    for v in weight_precision.values():
        get_precision(v)
    return base.model_copy(update=dict(weight_precision))


def weight_bytes_breakdown(
    arch: ModelArch,
    weight_precision: str | Mapping[str, str] | WeightPrecisions | None = None,
    include_mtp: bool = False,
    counts: ParamCounts | None = None,
) -> dict[str, float]:
    """Stored bytes per component (block scales included); ``mtp`` when asked."""
    prec = resolve_precisions(arch, weight_precision)
    counts = counts or param_counts(arch)
    out = {c: getattr(counts, c) * _bpe(getattr(prec, f)) for c, f in _COMPONENT_FIELD.items()}
    if include_mtp and counts.mtp:
        # MTP modules are decoder layers: costed at the experts' / attention's blend.
        per_param = (out["routed_experts"] + out["attention"] + out["dense_mlp"]) / max(
            1, counts.routed_experts + counts.attention + counts.dense_mlp
        )
        out["mtp"] = counts.mtp * per_param
    return out


def weight_bytes(
    arch: ModelArch,
    weight_precision: str | Mapping[str, str] | WeightPrecisions | None = None,
    include_mtp: bool = False,
) -> float:
    """Total stored weight bytes at the given (default: native) precisions."""
    return sum(weight_bytes_breakdown(arch, weight_precision, include_mtp).values())


def attention_kv_elements_per_layer(arch: ModelArch) -> int:
    """KV-cache elements one layer of the (primary) attention spec keeps per token."""
    return 0 if arch.attention is None else kv_elems_per_entry(arch.attention)


def kv_elements_per_token(arch: ModelArch) -> float:
    """Elements per token of the cache part that grows without bound (full-attention layers;
    a compressed layer adds one entry per ``kv_compress_ratio`` tokens)."""
    total = sum(g.layers * g.kv_elems * g.growth_per_token for g in attention_groups(arch))
    return int(total) if float(total).is_integer() else total


def kv_bytes_per_token(arch: ModelArch, kv_precision: str = "bf16") -> float:
    """Bytes per token of the uncapped (full-attention) KV cache."""
    return kv_elements_per_token(arch) * _bpe(kv_precision)


def kv_elements(arch: ModelArch, context_tokens: TokenArg) -> Any:
    """KV-cache elements for one sequence of ``context_tokens`` (windows capped)."""
    ctx = np.asarray(context_tokens, dtype=np.float64)
    total: Any = np.zeros_like(ctx)
    for g in attention_groups(arch):
        total = total + g.layers * g.cache_elems(ctx)
    return total if np.ndim(total) else float(total)


def kv_bytes(arch: ModelArch, context_tokens: TokenArg, kv_precision: str = "bf16") -> Any:
    """KV-cache bytes of one sequence (excluding recurrent state; see kv_state_bytes...)."""
    return kv_elements(arch, context_tokens) * _bpe(kv_precision)


def kv_state_bytes_per_sequence(arch: ModelArch, state_precision: str | None = None) -> float:
    """Constant per-sequence state of linear-attention and Mamba layers, in bytes.

    The recurrent state is kept in ``state_precision`` (default: the config's SSM dtype);
    the causal-conv state in bf16 unless ``state_precision`` is given.
    """
    state_b = _bpe(state_precision or arch.state_dtype)
    conv_b = _bpe(state_precision or "bf16")
    total = 0.0
    la = arch.linear_attention
    if la is not None:
        n = arch.count_mixers("linear_attention")
        conv_dim = 2 * la.num_key_heads * la.key_head_dim + la.num_value_heads * la.value_head_dim
        rec = la.num_value_heads * la.key_head_dim * la.value_head_dim
        total += n * (rec * state_b + (la.conv_kernel - 1) * conv_dim * conv_b)
    m = arch.mamba
    if m is not None:
        n = arch.count_mixers("mamba")
        d_inner = m.num_heads * m.head_dim
        conv_dim = d_inner + 2 * m.n_groups * m.state_size
        rec = m.num_heads * m.head_dim * m.state_size
        total += n * (rec * state_b + (m.conv_kernel - 1) * conv_dim * conv_b)
    return total


def _recurrent_flops_per_token(arch: ModelArch) -> int:
    flops = 0
    la = arch.linear_attention
    if la is not None:
        conv_dim = 2 * la.num_key_heads * la.key_head_dim + la.num_value_heads * la.value_head_dim
        per = 6 * la.num_value_heads * la.key_head_dim * la.value_head_dim
        per += 2 * conv_dim * la.conv_kernel
        flops += arch.count_mixers("linear_attention") * per
    m = arch.mamba
    if m is not None:
        d_inner = m.num_heads * m.head_dim
        conv_dim = d_inner + 2 * m.n_groups * m.state_size
        per = 6 * m.num_heads * m.head_dim * m.state_size + 2 * conv_dim * m.conv_kernel
        flops += arch.count_mixers("mamba") * per
    return flops


def _attention_flops(arch: ModelArch, n: TokenArg, c: TokenArg, absorbed: bool) -> Any:
    total: Any = 0.0
    for g in attention_groups(arch):
        total = total + g.layers * flops_per_pair(g.spec, absorbed) * g.pairs(n, c)
        if g.topk is not None:
            total = total + g.layers * g.index_flops_per_pair * g.scored_pairs(n, c)
    return total


def prefill_flops(
    arch: ModelArch,
    new_tokens: TokenArg,
    context_tokens_before: TokenArg = 0,
    mla_absorbed: bool = False,
    counts: ParamCounts | None = None,
) -> Any:
    """FLOPs to process ``new_tokens`` on top of ``context_tokens_before`` cached tokens."""
    counts = counts or param_counts(arch)
    n = np.asarray(new_tokens, dtype=np.float64)
    per_token = 2 * counts.active_gemm + _recurrent_flops_per_token(arch)
    total = per_token * n + _attention_flops(arch, n, context_tokens_before, mla_absorbed)
    return total if np.ndim(total) else float(total)


def decode_flops(
    arch: ModelArch,
    context_tokens: TokenArg,
    mla_absorbed: bool = True,
    counts: ParamCounts | None = None,
) -> Any:
    """FLOPs of one decode token with ``context_tokens`` already cached (attends to +1)."""
    return prefill_flops(arch, 1, context_tokens, mla_absorbed=mla_absorbed, counts=counts)
