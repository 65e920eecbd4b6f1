"""A model reduced to the numbers the step-latency model needs (scalars, computed once).

The step model is vectorised over candidates; the model is fixed for a call, so its
architecture is boiled down here: parameter counts per component, layer counts per kind,
and the attention layers grouped by shape, with what a step reads and computes for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesign.models import ModelArch, param_counts
from codesign.models.attn_layers import AttnGroup, attention_groups, flops_per_pair
from codesign.models.derived import _recurrent_flops_per_token, kv_state_bytes_per_sequence
from hwmodels.precision import get_precision


@dataclass(frozen=True)
class ModelProfile:
    """Per-model constants of the step model (parameters, not bytes: precision varies)."""

    id: str
    hidden: int
    vocab: int
    layers: int
    # softmax-attention layers grouped by shape (``codesign.models.attn_layers``)
    attn: tuple[AttnGroup, ...]
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
    num_heads: int  # a tensor-parallel width must divide it (every group's heads)
    recurrent_flops_per_token: float
    state_bytes_per_seq: float
    # native precisions of the checkpoint
    native_gemm: str
    native_moe: str
    native_attn: str
    # transformer-layer equivalents for the costs every layer's residual blocks pay (a
    # fused add + norm, a TP all-reduce and the engine's fixed cost per mixer or FFN
    # block): (mixer blocks + FFN blocks) / 2. A Nemotron-H block holds a mixer OR an MLP,
    # so its 52 blocks are 26 such layers; None: every layer holds both (``layers``)
    layer_units: float | None = None
    # the KV-cache precision the checkpoint declares (hf_quant_config kv_cache_quant_algo),
    # None where it declares none
    native_kv: str | None = None
    # the input embedding and lm_head are one matrix (held once in memory)
    tied_embeddings: bool = False

    @property
    def is_moe(self) -> bool:
        return self.moe_layers > 0

    @property
    def p_every_token(self) -> float:
        """Parameters every token runs through in its layers: all but the routed experts
        (and the embedding and lm_head)."""
        return self.p_attn + self.p_recurrent + self.p_dense + self.p_shared + self.p_router

    @property
    def units(self) -> float:
        """Transformer-layer equivalents (``layer_units``, or ``layers``)."""
        return float(self.layers if self.layer_units is None else self.layer_units)

    @property
    def attn_layers(self) -> int:
        return sum(g.layers for g in self.attn)

    @property
    def index_topk(self) -> int:
        """The DSA top-k of the first group with an indexer (0: none)."""
        return next((g.topk for g in self.attn if g.topk), 0) or 0

    def decode_kv_elems(self, ctx: np.ndarray, tp: np.ndarray) -> np.ndarray:
        """Cache elements one rank reads per decoding sequence at ``ctx`` cached tokens:
        the attended entries, and every scored entry's indexer key (DSA)."""
        total = np.zeros(np.broadcast(ctx, tp).shape)
        for g in self.attn:
            body = g.attended(ctx) * (g.kv_elems - g.index_elems) / g.rank_split(tp)
            ix = g.scored(ctx) * g.spec.indexer.head_dim if g.spec.indexer else 0.0
            total = total + g.layers * (body + ix)
        return total

    def decode_attn_flops(self, ctx: np.ndarray) -> np.ndarray:
        """Attention FLOPs of one decoding sequence (all heads; absorbed MLA)."""
        total = np.zeros(np.shape(ctx))
        for g in self.attn:
            total = total + g.layers * (
                g.attended(ctx) * flops_per_pair(g.spec, True)
                + g.scored(ctx) * g.index_flops_per_pair
            )
        return total

    def prefill_attn_flops(self, new: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Attention FLOPs of ``new`` causal queries after ``before`` cached tokens."""
        total = np.zeros(np.broadcast(new, before).shape)
        for g in self.attn:
            total = total + g.layers * (
                g.pairs(new, before) * flops_per_pair(g.spec, False)
                + g.scored_pairs(new, before) * g.index_flops_per_pair
            )
        return total

    def prefill_kv_elems(self, ctx: np.ndarray, tp: np.ndarray) -> np.ndarray:
        """Cache elements one rank reads for a prefill pass ending at ``ctx`` tokens."""
        total = np.zeros(np.broadcast(ctx, tp).shape)
        for g in self.attn:
            total = total + g.layers * g.attended(ctx) * g.kv_elems / g.rank_split(tp)
        return total

    def kv_elems_per_token(self, tp: np.ndarray, growing_only: bool = False) -> np.ndarray:
        """Cache elements one rank keeps per token over all attention layers (windows as
        if full; ``growing_only``: only the layers whose cache grows without bound)."""
        total = np.zeros(np.shape(tp))
        for g in self.attn:
            per = g.growth_per_token if growing_only else g.entries_per_token
            total = total + g.layers * g.kv_elems * per / g.rank_split(tp)
        return total

    def kv_split(self, tp: np.ndarray) -> np.ndarray:
        """Effective divisor of the growing cache over tp ranks (1 without attention)."""
        whole = sum(g.layers * g.kv_elems * g.growth_per_token for g in self.attn)
        per_rank = self.kv_elems_per_token(tp, growing_only=True)
        return np.where(per_rank > 0, whole / np.maximum(per_rank, 1e-30), 1.0)


def build_profile(arch: ModelArch) -> ModelProfile:
    counts = param_counts(arch)
    groups = attention_groups(arch)
    moe_layers = arch.count_ffns("moe")
    m = arch.moe
    prec = arch.precision
    heads = 0
    for g in groups:
        heads = math.gcd(heads, g.spec.num_heads)
    blocks = sum(m != "none" for m in arch.layer_mixers) + sum(f != "none" for f in arch.layer_ffns)
    return ModelProfile(
        layer_units=blocks / 2.0 if blocks != 2 * arch.num_layers else None,
        id=arch.id,
        hidden=arch.hidden_size,
        vocab=arch.vocab_size,
        layers=arch.num_layers,
        attn=groups,
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
        num_heads=heads,
        recurrent_flops_per_token=float(_recurrent_flops_per_token(arch)),
        state_bytes_per_seq=float(kv_state_bytes_per_sequence(arch)),
        native_gemm=prec.dense_mlp if arch.dense_mlp else prec.attention,
        native_moe=prec.experts,
        native_attn=prec.attention,
        native_kv=prec.kv_cache,
        tied_embeddings=bool(arch.tie_word_embeddings),
    )


def bytes_per_element(name: str) -> float:
    return get_precision(name).bytes_per_element
