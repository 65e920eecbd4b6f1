"""Softmax-attention layers grouped by shape: what each group caches, reads and computes.

A model's attention layers share one ``AttentionSpec`` unless ``layer_attention`` gives
some of them another (Gemma 4 global vs sliding layers, MiMo-V2 and Step-3.7 full vs
sliding heads, DeepSeek-V4 window-only / compressed-sparse / heavily-compressed layers).
An ``AttnGroup`` is the layers of one (spec, mixer kind) pair. Per layer and sequence:

- ``entries(ctx)``: cache entries kept for ``ctx`` tokens: all of them (full attention),
  at most the window / chunk (sliding / chunked), or a raw window plus one compressed
  entry per ``kv_compress_ratio`` tokens (DeepSeek-V4).
- ``attended(ctx)``: entries one query reads; a DSA indexer caps the (compressed) part
  at its top-k.
- ``scored(ctx)``: entries the DSA indexer scores per query (0 without an indexer).
- ``pairs(new, before)`` / ``scored_pairs``: the same summed over ``new`` causal queries
  after ``before`` cached tokens, for prefill FLOPs.

Entries hold ``kv_elems`` elements: an MLA latent + rope, or kv heads x (k + v) dims (k
only when keys double as values), plus the DSA indexer's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.models.arch import ATTENTION_MIXERS, AttentionSpec, ModelArch

TokenArg = Any  # int | float | np.ndarray


def kv_elems_per_entry(a: AttentionSpec) -> int:
    """Elements of one cache entry of one layer."""
    index = a.indexer.head_dim if a.indexer else 0  # the indexer's key, cached beside
    if a.kind == "mla":
        return (a.kv_lora_rank or 0) + (a.qk_rope_head_dim or 0) + index
    return a.num_kv_heads * (a.head_dim + (0 if a.kv_shared else a.v_head_dim)) + index


def flops_per_pair(a: AttentionSpec, absorbed: bool) -> float:
    """Attention FLOPs per (query, key) pair of one layer: QK^T and PV over all heads
    (MLA absorbed: against the latent, as decode runs it)."""
    if a.kind == "mla" and absorbed:
        qk, v = (a.kv_lora_rank or 0) + (a.qk_rope_head_dim or 0), a.kv_lora_rank or 0
    else:
        qk, v = a.head_dim, a.v_head_dim
    return float(2 * a.num_heads * (qk + v))


def _pairs_before(x: np.ndarray, cap: float | None) -> np.ndarray:
    """Causal (query, key) pairs of the first x positions, keys capped at ``cap``."""
    full = x * (x + 1) / 2
    if cap is None:
        return full
    return np.where(x <= cap, full, cap * (cap + 1) / 2 + (x - cap) * cap)


def attention_pairs(new_tokens: TokenArg, before: TokenArg, cap: float | None = None) -> Any:
    """Sum over the new positions p of min(p + 1, cap): keys each new query attends to."""
    n = np.asarray(new_tokens, dtype=np.float64)
    c = np.asarray(before, dtype=np.float64)
    return _pairs_before(c + n, cap) - _pairs_before(c, cap)


@dataclass(frozen=True)
class AttnGroup:
    spec: AttentionSpec
    mixer: str
    layers: int

    @property
    def cap(self) -> int | None:
        """Key cap of a sliding / chunked layer (None: unbounded)."""
        if self.mixer == "sliding_attention":
            return self.spec.sliding_window_tokens
        if self.mixer == "chunked_attention":
            return self.spec.chunk_tokens
        return None

    @property
    def ratio(self) -> int:
        return self.spec.kv_compress_ratio or 1

    @property
    def compressed(self) -> bool:
        return self.spec.kv_compress_ratio is not None and self.mixer == "full_attention"

    @property
    def topk(self) -> int | None:
        return self.spec.indexer.topk_tokens if self.spec.indexer else None

    @property
    def kv_elems(self) -> int:
        return kv_elems_per_entry(self.spec)

    @property
    def index_elems(self) -> int:
        """Elements of an entry only the indexer reads (its key)."""
        ix = self.spec.indexer
        return ix.head_dim if ix is not None else 0

    @property
    def index_flops_per_pair(self) -> float:
        ix = self.spec.indexer
        return float(2 * ix.num_heads * ix.head_dim) if ix is not None else 0.0

    @property
    def growth_per_token(self) -> float:
        """Cache entries added per token once windows are full (0 for bounded layers)."""
        if self.compressed:
            return 1.0 / self.ratio
        return 1.0 if self.cap is None else 0.0

    @property
    def entries_per_token(self) -> float:
        """Cache entries per token with windows counted as if full (1/ratio compressed)."""
        return 1.0 / self.ratio if self.compressed else 1.0

    def rank_split(self, tp: TokenArg) -> Any:
        """Tensor-parallel ranks the cache is divided over: GQA heads split over tp (each
        rank keeps whole KV heads, replicated beyond them); an MLA latent is replicated."""
        if self.spec.kind == "mla":
            return 1.0
        return np.minimum(tp, max(self.spec.num_kv_heads, 1))

    def _window(self) -> int:
        return self.spec.sliding_window_tokens or 0

    def entries(self, ctx: TokenArg) -> Any:
        c = np.asarray(ctx, dtype=np.float64)
        if self.compressed:
            return np.minimum(c, self._window()) + c / self.ratio
        return c if self.cap is None else np.minimum(c, self.cap)

    def cache_elems(self, ctx: TokenArg) -> Any:
        """Cache elements of one layer for ``ctx`` tokens (a compressed layer's raw-window
        entries carry no indexer key)."""
        c = np.asarray(ctx, dtype=np.float64)
        total = self.entries(c) * self.kv_elems
        if self.compressed:
            total = total - np.minimum(c, self._window()) * self.index_elems
        return total

    def attended(self, ctx: TokenArg) -> Any:
        c = np.asarray(ctx, dtype=np.float64)
        k = self.topk
        if self.compressed:
            part = c / self.ratio
            return np.minimum(c, self._window()) + (part if k is None else np.minimum(part, k))
        e = self.entries(c)
        return e if k is None else np.minimum(e, k)

    def scored(self, ctx: TokenArg) -> Any:
        c = np.asarray(ctx, dtype=np.float64)
        if self.topk is None:
            return np.zeros_like(c)
        return c / self.ratio if self.compressed else self.entries(c)

    def pairs(self, new: TokenArg, before: TokenArg) -> Any:
        """Attended (query, key) pairs of ``new`` causal queries after ``before`` tokens."""
        k = self.topk
        if self.compressed:
            w = self._window()
            raw = attention_pairs(new, before, w) if w else 0.0
            # sum_p min(p / r, k) = sum_p min(p, r k) / r
            return raw + attention_pairs(new, before, None if k is None else k * self.ratio) / (
                self.ratio
            )
        cap = self.cap
        if k is not None:
            cap = k if cap is None else min(cap, k)
        return attention_pairs(new, before, cap)

    def scored_pairs(self, new: TokenArg, before: TokenArg) -> Any:
        if self.topk is None:
            return np.zeros(np.broadcast(np.asarray(new), np.asarray(before)).shape)
        if self.compressed:
            return attention_pairs(new, before, None) / self.ratio
        return attention_pairs(new, before, self.cap)


def attention_groups(arch: ModelArch) -> tuple[AttnGroup, ...]:
    """The model's softmax-attention layers, grouped by (spec, mixer kind), in first-seen
    order."""
    counts: dict[tuple[int, str], int] = {}
    for i, mixer in enumerate(arch.layer_mixers):
        if mixer in ATTENTION_MIXERS:
            k = arch.layer_attention[i] if arch.layer_attention else 0
            counts[(k, mixer)] = counts.get((k, mixer), 0) + 1
    specs = (arch.attention, *arch.extra_attention)
    out = []
    for (k, mixer), n in counts.items():
        spec = specs[k]
        if spec is not None:
            out.append(AttnGroup(spec, mixer, n))
    return tuple(out)
