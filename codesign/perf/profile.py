"""A model reduced to the numbers the step-latency model needs (scalars, computed once).

The step model is vectorised over candidates; the model is fixed for a call, so its
architecture is boiled down here: parameter counts per component, layer counts per kind,
KV-cache elements per attention layer, attention FLOPs per (query, key) pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.models import ModelArch, attention_kv_elements_per_layer, param_counts
from codesign.models.derived import _recurrent_flops_per_token, kv_state_bytes_per_sequence
from hwmodels.precision import get_precision


@dataclass(frozen=True)
class ModelProfile:
    """Per-model constants of the step model (parameters, not bytes: precision varies)."""

    id: str
    hidden: int
    vocab: int
    layers: int
    attn_layers: int  # softmax-attention layers (any window)
    # (layer count, key cap or 0 for unbounded) per attention-layer group
    attn_groups: tuple[tuple[int, int], ...]
    moe_layers: int
    # parameters per component, summed over layers
    p_attn: float
    p_recurrent: float
    p_dense: float
    p_shared: float
    p_router: float
    p_routed_total: float
    p_expert: float  # one routed expert of one layer
    p_lm_head: float
    num_experts: int
    top_k: int
    num_heads: int
    num_kv_heads: int
    is_mla: bool
    kv_elems_per_layer: int
    flops_per_pair_prefill: float  # 2 x heads x (qk + v), non-absorbed
    flops_per_pair_decode: float  # absorbed for MLA
    index_topk: int  # DSA: keys each query attends to (0 = none)
    index_head_dim: int  # DSA: indexer key elements per token per layer (0 = none)
    indexer_flops_per_pair: float
    recurrent_flops_per_token: float
    state_bytes_per_seq: float
    # native precisions of the checkpoint
    native_gemm: str
    native_moe: str
    native_attn: str

    @property
    def is_moe(self) -> bool:
        return self.moe_layers > 0

    def kv_tokens_read(self, context: np.ndarray) -> np.ndarray:
        """Sum over attention layers of keys read per query, per layer-token unit.

        Returns layer-weighted tokens: sum_g layers_g x min(context, cap_g).
        """
        ctx = np.asarray(context, dtype=np.float64)
        total = np.zeros_like(ctx)
        for layers, cap in self.attn_groups:
            keys = ctx if cap == 0 else np.minimum(ctx, cap)
            if self.index_topk:
                keys = np.minimum(keys, self.index_topk)
            total = total + layers * keys
        return total

    def attention_pairs(self, new: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Layer-weighted causal (query, key) pairs for ``new`` tokens after ``before``."""
        n = np.asarray(new, dtype=np.float64)
        c = np.asarray(before, dtype=np.float64)

        def upto(x: np.ndarray, cap: float) -> np.ndarray:
            full = x * (x + 1) / 2
            if cap <= 0:
                return full
            return np.where(x <= cap, full, cap * (cap + 1) / 2 + (x - cap) * cap)

        total = np.zeros(np.broadcast(n, c).shape)
        for layers, cap in self.attn_groups:
            eff = cap
            if self.index_topk:
                eff = self.index_topk if cap == 0 else min(cap, self.index_topk)
            total = total + layers * (upto(c + n, eff) - upto(c, eff))
        return total

    @property
    def kv_elems_attended(self) -> int:
        """KV elements per layer a query reads for each attended key (MLA caches the
        indexer key beside the latent; only the indexer reads it)."""
        return self.kv_elems_per_layer - (self.index_head_dim if self.is_mla else 0)

    def indexer_keys_read(self, context: np.ndarray) -> np.ndarray:
        """Layer-weighted keys the DSA indexer scores per query: every key, uncapped."""
        ctx = np.asarray(context, dtype=np.float64)
        return self.attn_layers * ctx if self.index_topk else np.zeros_like(ctx)

    def indexer_pairs(self, new: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Pairs the DSA indexer scores (all keys, uncapped by top-k)."""
        if not self.index_topk:
            return np.zeros(np.broadcast(new, before).shape)
        n = np.asarray(new, dtype=np.float64)
        c = np.asarray(before, dtype=np.float64)
        full = (c + n) * (c + n + 1) / 2 - c * (c + 1) / 2
        return self.attn_layers * full


def build_profile(arch: ModelArch) -> ModelProfile:
    counts = param_counts(arch)
    a = arch.attention
    groups: dict[int, int] = {}
    for mixer in arch.layer_mixers:
        if mixer in ("full_attention", "sliding_attention", "chunked_attention"):
            cap = 0
            if a is not None and mixer == "sliding_attention":
                cap = a.sliding_window_tokens or 0
            elif a is not None and mixer == "chunked_attention":
                cap = a.chunk_tokens or 0
            groups[cap] = groups.get(cap, 0) + 1
    moe_layers = arch.count_ffns("moe")
    m = arch.moe
    if a is not None and a.kind == "mla":
        pre = 2 * a.num_heads * (a.head_dim + a.v_head_dim)
        lat = (a.kv_lora_rank or 0) + (a.qk_rope_head_dim or 0)
        dec = 2 * a.num_heads * (lat + (a.kv_lora_rank or 0))
    elif a is not None:
        pre = dec = 2 * a.num_heads * (a.head_dim + a.v_head_dim)
    else:
        pre = dec = 0
    ix = a.indexer if a is not None else None
    prec = arch.precision
    return ModelProfile(
        id=arch.id,
        hidden=arch.hidden_size,
        vocab=arch.vocab_size,
        layers=arch.num_layers,
        attn_layers=sum(groups.values()),
        attn_groups=tuple(sorted((n, cap) for cap, n in groups.items())),
        moe_layers=moe_layers,
        p_attn=float(counts.attention),
        p_recurrent=float(counts.linear_attention + counts.mamba),
        p_dense=float(counts.dense_mlp),
        p_shared=float(counts.shared_experts),
        p_router=float(counts.router),
        p_routed_total=float(counts.routed_experts),
        p_expert=float(counts.routed_experts / (moe_layers * m.num_experts)) if m else 0.0,
        p_lm_head=float(arch.vocab_size * arch.hidden_size),
        num_experts=m.num_experts if m else 0,
        top_k=m.experts_per_token if m else 0,
        num_heads=a.num_heads if a else 0,
        num_kv_heads=a.num_kv_heads if a else 0,
        is_mla=bool(a is not None and a.kind == "mla"),
        kv_elems_per_layer=attention_kv_elements_per_layer(arch),
        flops_per_pair_prefill=float(pre),
        flops_per_pair_decode=float(dec),
        index_topk=ix.topk_tokens if ix else 0,
        index_head_dim=ix.head_dim if ix else 0,
        indexer_flops_per_pair=float(2 * ix.num_heads * ix.head_dim) if ix else 0.0,
        recurrent_flops_per_token=float(_recurrent_flops_per_token(arch)),
        state_bytes_per_seq=float(kv_state_bytes_per_sequence(arch)),
        native_gemm=prec.dense_mlp if arch.dense_mlp else prec.attention,
        native_moe=prec.experts,
        native_attn=prec.attention,
    )


def bytes_per_element(name: str) -> float:
    return get_precision(name).bytes_per_element
