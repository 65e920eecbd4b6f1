"""Parsers for Step-3.7-Flash (``step3p7``) and MiniMax-M3 (``minimax_m3`` / ``minimax_m3_vl``).

Both have per-layer attention differences that one ``AttentionSpec`` cannot hold, so the
spec gets equivalent uniform values. What is preserved, in priority order: total
parameters, active parameters, KV-cache elements per token at long context, attention
FLOPs. Every approximation is also written to the arch's ``notes`` with its numbers.

Step-3.7-Flash (45 layers, 1 full : 3 sliding, window 512):
- Full layers use ``num_attention_heads`` query heads; sliding layers may use another count
  (``attention_other_setting`` / ``num_sliding_attention_heads``; 96 vs 64 in the published
  checkpoint). The uniform head count is the multiple of the KV heads closest to the
  layer-averaged parameter count (64/96 on 12/33 layers -> 88: +25M params, 0.01%).
  KV heads and head dim are those of the full layers, so KV per token at long context is
  exact; attention FLOPs per (query, key) pair of the full layers are overstated by
  88/64 (sliding layers, capped at 512 keys, understated by 88/96).
- The head-wise output gate (``use_head_wise_attn_gate``: hidden x heads per layer) has no
  field; its parameters are folded into the head count.

MiniMax-M3 (60 layers): GQA 64 q / 4 kv heads x 128, per-head q/k norms. Layers flagged in
``sparse_attention_config.sparse_attention_freq`` (57 of 60) run block-sparse attention: a
score-only lightning indexer (index q: ``sparse_num_index_heads`` x ``sparse_index_dim``,
one shared index key head) picks ``sparse_topk_blocks`` blocks of ``sparse_block_size``
tokens; the others attend to every key.
- Query/KV head counts stay as published (they bound tensor parallelism). The indexer's
  projections and its per-token key cache have no GQA field: ``head_dim`` is widened
  (128 -> 137) so the attention parameters match (+1.5M, 0.02%); KV per token is then
  63,600 elements instead of 68,736 (60 x 1,024 + 57 x 128 index keys): -7.5%.
- One indexer spec covers all layers: every layer attends to top-k = 2,048 keys. The dense
  layers' extra keys are charged to the indexer instead: its head count is the equivalent
  ``(n_sparse x idx_heads x idx_dim + n_dense x heads x 2 x head_dim) / (n x idx_dim)``
  (10 for M3), which keeps the attention FLOPs per token beyond 2K context within ~2%.
"""

from __future__ import annotations

from typing import Any

from codesign.errors import UnsupportedModelError
from codesign.models.arch import AttentionSpec, DenseMlpSpec, IndexerSpec, MoeSpec
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import Fields, _common


def _attn_params(h: int, heads: int, kv: int, hd: int, vhd: int, gate: bool = False) -> int:
    """Parameters of one GQA layer with per-head q/k norms (as ``params.attention_params``)."""
    return h * (heads * hd * (2 if gate else 1) + kv * (hd + vhd) + heads * vhd) + 2 * hd


def _nearest_multiple(x: float, k: int) -> int:
    return max(k, k * round(x / k))


def _layer_types(c: Cfg, n: int) -> tuple[str, ...]:
    types = tuple(c.get("layer_types") or ("full_attention",) * n)
    if len(types) < n:
        raise UnsupportedModelError(
            f"{c.arch_name}: layer_types has {len(types)} entries, num_hidden_layers is {n}"
        )
    unknown = sorted(set(types[:n]) - {"full_attention", "sliding_attention"})
    if unknown:
        raise UnsupportedModelError(f"{c.arch_name}: unknown layer_types {unknown}")
    return types[:n]  # the published list also covers the MTP layers


def _step_moe_layers(c: Cfg, n: int) -> set[int]:
    enum = c.get("moe_layers_enum")
    if enum is not None:
        items = enum.split(",") if isinstance(enum, str) else enum
        return {int(i) for i in items if str(i).strip()}
    return set(range(c.get("first_k_dense_replace", 3), n))


def parse_step3p7(c: Cfg) -> Fields:
    """Step-3.7-Flash / Step-3.5-Flash: 1:3 full/sliding GQA, per-layer-type head counts."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    types = _layer_types(c, n)
    other = c.get("attention_other_setting") or {}
    heads_full = c.int("num_attention_heads")
    kv = c.int("num_key_value_heads", "num_attention_groups")
    hd = c.int("head_dim")
    heads_slide = c.get("num_sliding_attention_heads") or other.get("num_attention_heads")
    heads_slide = heads_slide or heads_full
    kv_slide = other.get("num_attention_groups") or kv
    hd_slide = other.get("head_dim") or hd
    gate = bool(c.get("use_head_wise_attn_gate", False))
    n_full = types.count("full_attention")
    real = n_full * (_attn_params(h, heads_full, kv, hd, hd) + (h * heads_full if gate else 0))
    real += (n - n_full) * (
        _attn_params(h, heads_slide, kv_slide, hd_slide, hd_slide)
        + (h * heads_slide if gate else 0)
    )
    per_head = h * 2 * hd  # q and o rows of one head
    heads = _nearest_multiple((real / n - _attn_params(h, 0, kv, hd, hd)) / per_head, kv)
    notes: list[str] = []
    if (heads_slide, kv_slide, hd_slide) != (heads_full, kv, hd) or gate:
        ours = n * _attn_params(h, heads, kv, hd, hd)
        notes.append(
            f"per-layer heads ({n_full} full x {heads_full} q heads, {n - n_full} sliding x "
            f"{heads_slide} q heads{', head-wise output gate' if gate else ''}) modelled as "
            f"{heads} q heads on every layer: attention params {ours / 1e6:,.0f}M vs "
            f"{real / 1e6:,.0f}M; full-layer attention FLOPs x{heads / heads_full:.2f}"
        )
    if (kv_slide, hd_slide) != (kv, hd):
        notes.append(
            f"sliding layers' KV ({kv_slide} x {hd_slide}) modelled as {kv} x {hd} (window only)"
        )
    if "attention_other_setting" not in c and "num_sliding_attention_heads" not in c:
        notes.append(
            f"config gives one head layout for all layers ({heads_full} q / {kv} kv heads); "
            "the published Step-3.7 checkpoint uses 96 q heads on sliding layers"
        )
    moe_layers = _step_moe_layers(c, n)
    ffns = tuple("moe" if i in moe_layers else "dense" for i in range(n))
    shared_dim = c.get("share_expert_dim", 0)
    n_shared = c.get("n_shared_experts", 1 if shared_dim else 0)
    f.update(
        attention=AttentionSpec(
            kind="gqa",
            num_heads=heads,
            num_kv_heads=kv,
            head_dim=hd,
            v_head_dim=hd,
            sliding_window_tokens=c.int("sliding_window") if "sliding_attention" in types else None,
            qk_norm=True,
            bias=bool(c.get("attention_bias", False)),
        ),
        moe=MoeSpec(
            num_experts=c.int("num_experts", "moe_num_experts", "n_routed_experts"),
            experts_per_token=c.int("num_experts_per_tok", "moe_top_k"),
            expert_intermediate_size=c.int("moe_intermediate_size"),
            num_shared_experts=n_shared if shared_dim else 0,
            shared_intermediate_size=shared_dim if n_shared else 0,
            router_bias=bool(c.get("use_moe_router_bias", False)),
        ),
        layer_mixers=types,
        layer_ffns=ffns,
        num_mtp_layers=c.get("num_nextn_predict_layers", 0),
        notes=tuple(notes),
    )
    if "dense" in ffns:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
    return f


def _flags(values: Any, n: int, default: int) -> list[bool]:
    if values is None:
        return [bool(default)] * n
    return [bool(v) for v in list(values)[:n]] + [bool(default)] * max(0, n - len(values))


def _m3_attention(c: Cfg, n: int, h: int) -> tuple[AttentionSpec, list[str]]:
    """Uniform GQA + indexer spec equivalent to M3's dense/sparse attention layers."""
    heads, kv = c.int("num_attention_heads"), c.int("num_key_value_heads")
    hd = c.get("head_dim") or h // heads
    gate = bool(c.get("attention_output_gate", False))
    qk_norm = bool(c.get("use_qk_norm", False))
    base = _attn_params(h, heads, kv, hd, hd, gate) - (0 if qk_norm else 2 * hd)
    sc = c.get("sparse_attention_config") or {}
    sparse = _flags(sc.get("sparse_attention_freq"), n, 1) if sc.get("use_sparse_attention") else []
    n_sparse = sum(sparse)
    spec: dict[str, Any] = {"qk_norm": qk_norm, "output_gate": gate}
    if not n_sparse:
        return AttentionSpec(kind="gqa", num_heads=heads, num_kv_heads=kv, head_dim=hd,
                             v_head_dim=hd, **spec), []  # fmt: skip
    ix_heads, ix_dim = int(sc["sparse_num_index_heads"]), int(sc["sparse_index_dim"])
    topk = int(sc["sparse_topk_blocks"]) * int(sc["sparse_block_size"])
    # Score-only indexer: index_q (ix_heads x ix_dim), one shared index key head, q/k norms.
    real = n * base + n_sparse * (h * (ix_heads + 1) * ix_dim + 2 * ix_dim)
    real_kv = n * kv * 2 * hd + n_sparse * ix_dim
    # widen the key/query head_dim so the per-layer parameters match the real average
    per_dim = h * (heads * (2 if gate else 1) + kv) + (2 if qk_norm else 0)
    extra = max(0, round((real / n - base) / per_dim))
    ours = n * (_attn_params(h, heads, kv, hd + extra, hd, gate) - (0 if qk_norm else 2 * hd))
    ours_kv = n * kv * (2 * hd + extra)
    n_dense = n - n_sparse
    eq_heads = round((n_sparse * ix_heads * ix_dim + n_dense * heads * 2 * hd) / (n * ix_dim))
    indexer = IndexerSpec(num_heads=max(1, eq_heads), head_dim=ix_dim, topk_tokens=topk)
    notes = [
        f"MiniMax sparse attention on {n_sparse}/{n} layers (top {topk} keys); indexer "
        f"projections folded into head_dim {hd}->{hd + extra}: attention params "
        f"{ours / 1e6:,.0f}M vs {real / 1e6:,.0f}M",
        f"KV {ours_kv:,} elements/token vs {real_kv:,} ({n}x{kv * 2 * hd} + {n_sparse}x{ix_dim} "
        f"index keys): {100 * (ours_kv / real_kv - 1):+.1f}%",
    ]
    if n_dense:
        notes.append(
            f"{n_dense} dense-attention layers also capped at {topk} keys; their extra keys "
            f"are charged to an equivalent indexer of {indexer.num_heads} heads "
            f"(real {ix_heads}) x {ix_dim} on all layers"
        )
    attn = AttentionSpec(
        kind="gqa",
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=hd + extra,
        v_head_dim=hd,
        indexer=indexer,
        **spec,
    )
    return attn, notes


def parse_minimax_m3(c: Cfg) -> Fields:
    """MiniMax-M3 (and the text tower of minimax_m3_vl): GQA + block-sparse attention, MoE."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    attn, notes = _m3_attention(c, n, h)
    freq = c.get("moe_layer_freq")
    if isinstance(freq, list):
        moe = _flags(freq, n, 1)
    else:
        first = c.get("first_k_dense_replace", 0)
        moe = [i >= first for i in range(n)]
    ffns = tuple("moe" if m else "dense" for m in moe)
    shared = c.get("shared_intermediate_size", 0)
    n_shared = c.get("n_shared_experts", 1 if shared else 0)
    f.update(
        attention=attn,
        moe=MoeSpec(
            num_experts=c.int("num_local_experts", "num_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size", "intermediate_size"),
            num_shared_experts=n_shared if shared else 0,
            shared_intermediate_size=shared if n_shared else 0,
            router_bias=bool(c.get("use_routing_bias", False)),
        ),
        layer_mixers=("full_attention",) * n,
        layer_ffns=ffns,
        num_mtp_layers=c.get("num_nextn_predict_layers", c.get("num_mtp_modules", 0)),
        notes=tuple(notes),
    )
    if "dense" in ffns:
        f["dense_mlp"] = DenseMlpSpec(
            intermediate_size=c.int("dense_intermediate_size", "intermediate_size")
        )
    return f
