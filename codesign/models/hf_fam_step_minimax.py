"""Parsers for Step-3.7-Flash (``step3p7``) and MiniMax-M3 (``minimax_m3`` / ``minimax_m3_vl``).

Both models have attention layers of more than one shape; each shape gets its own
``AttentionSpec`` (``attention`` for layer 0's, ``extra_attention`` for the others, mapped by
``layer_attention``), so parameters, KV cache and attention FLOPs are counted per layer.
What the specs cannot hold is written to the arch's ``notes`` with its exact size.

Step-3.7-Flash (45 layers, 1 full : 3 sliding, window 512):
- Full layers: ``num_attention_heads`` q / ``num_attention_groups`` kv heads x ``head_dim``,
  per-head q/k norms. Sliding layers use ``attention_other_setting`` (or
  ``num_sliding_attention_heads``) where the config gives it: 96 q heads in the published
  checkpoint. The shipped config.json has no such field: one spec, with a note.
- ``use_head_wise_attn_gate`` adds ``g_proj`` (hidden -> heads, one sigmoid per head) on
  every layer. ``AttentionSpec`` has no field for it (``output_gate`` is the element-wise
  gate, q x2), so its ``hidden x heads`` parameters per layer are left out and noted.

MiniMax-M3 (60 layers): GQA 64 q / 4 kv heads x 128, per-head q/k norms. Layers flagged in
``sparse_attention_config.sparse_attention_freq`` (57 of 60) run block-sparse attention;
the others (3) are plain full attention without an indexer.
- Sparse layers: score-only lightning indexer (``index_q_proj``: hidden -> 4 heads x 128,
  ``index_k_proj``: hidden -> one shared 128-dim key head, cached per token; per-head
  index q/k norms; no index value/output projections, ``sparse_disable_index_value``). It
  scores every key and keeps ``sparse_topk_blocks`` x ``sparse_block_size`` = 2,048 keys.
- Residuals, both in ``notes``: (1) the core's DSA indexer also has a head-weight projection
  (hidden x index heads) M3 lacks: +hidden x 4 params per sparse layer (+1,400,832 in all);
  (2) top-k is counted per key, not per 128-key block: past 2,048 tokens a query reads 15
  whole blocks plus the causal part of its own, 1,921..2,048 keys, not 2,048 (mean -63.5).
"""

from __future__ import annotations

from typing import Any

from codesign.errors import UnsupportedModelError
from codesign.models.arch import AttentionSpec, DenseMlpSpec, IndexerSpec, MoeSpec
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import Fields, _common


def _per_layer(specs: list[AttentionSpec]) -> Fields:
    """``attention`` / ``extra_attention`` / ``layer_attention`` for one spec per layer."""
    unique = list(dict.fromkeys(specs))
    index = tuple(unique.index(s) for s in specs) if len(unique) > 1 else ()
    return {"attention": unique[0], "extra_attention": tuple(unique[1:]), "layer_attention": index}


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


def _step_attention(c: Cfg, types: tuple[str, ...], h: int) -> tuple[Fields, list[str]]:
    """One GQA spec per layer type (full / sliding), from the per-type head groups."""
    other = c.get("attention_other_setting") or {}
    heads = c.int("num_attention_heads")
    kv = c.int("num_key_value_heads", "num_attention_groups")
    hd = c.int("head_dim")
    heads_s = c.get("num_sliding_attention_heads") or other.get("num_attention_heads") or heads
    kv_s = other.get("num_attention_groups") or other.get("num_key_value_heads") or kv
    hd_s = other.get("head_dim") or hd
    window = c.int("sliding_window") if "sliding_attention" in types else None
    bias = bool(c.get("attention_bias", False))

    def spec(q: int, k: int, d: int) -> AttentionSpec:
        return AttentionSpec(kind="gqa", num_heads=q, num_kv_heads=k, head_dim=d, v_head_dim=d,
                             sliding_window_tokens=window, qk_norm=True, bias=bias)  # fmt: skip

    full, sliding = spec(heads, kv, hd), spec(heads_s, kv_s, hd_s)
    fields = _per_layer([sliding if t == "sliding_attention" else full for t in types])
    notes: list[str] = []
    if c.get("use_head_wise_attn_gate", False):
        n_full = types.count("full_attention")
        gate = h * (n_full * heads + (len(types) - n_full) * heads_s)
        notes.append(
            f"head-wise attention gate (g_proj, hidden x heads per layer) not counted, no "
            f"AttentionSpec field: -{gate:,} params ({n_full} x {h} x {heads} + "
            f"{len(types) - n_full} x {h} x {heads_s}), -{2 * gate:,} FLOPs/token"
        )
    if "attention_other_setting" not in c and "num_sliding_attention_heads" not in c:
        notes.append(
            f"config gives one head layout for all layers ({heads} q / {kv} kv heads); "
            "the published Step-3.7 checkpoint uses 96 q heads on sliding layers"
        )
    return fields, notes


def parse_step3p7(c: Cfg) -> Fields:
    """Step-3.7-Flash / Step-3.5-Flash: 1:3 full/sliding GQA, per-layer-type head counts."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    types = _layer_types(c, n)
    attn, notes = _step_attention(c, types, h)
    moe_layers = _step_moe_layers(c, n)
    ffns = tuple("moe" if i in moe_layers else "dense" for i in range(n))
    shared_dim = c.get("share_expert_dim", 0)
    n_shared = c.get("n_shared_experts", 1 if shared_dim else 0)
    f.update(
        attn,
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


def _m3_attention(c: Cfg, n: int, h: int) -> tuple[Fields, list[str]]:
    """Dense layers: plain GQA; sparse layers: the same GQA plus the lightning indexer."""
    heads, kv = c.int("num_attention_heads"), c.int("num_key_value_heads")
    hd = c.get("head_dim") or h // heads
    dense = AttentionSpec(
        kind="gqa",
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=hd,
        v_head_dim=hd,
        qk_norm=bool(c.get("use_qk_norm", False)),
        output_gate=bool(c.get("attention_output_gate", False)),
    )
    sc = c.get("sparse_attention_config") or {}
    sparse = _flags(sc.get("sparse_attention_freq"), n, 1) if sc.get("use_sparse_attention") else []
    n_sparse = sum(sparse)
    if not n_sparse:
        return _per_layer([dense] * n), []
    ix_heads, ix_dim = int(sc["sparse_num_index_heads"]), int(sc["sparse_index_dim"])
    block, blocks = int(sc["sparse_block_size"]), int(sc["sparse_topk_blocks"])
    indexer = IndexerSpec(num_heads=ix_heads, head_dim=ix_dim, topk_tokens=blocks * block)
    with_ix = dense.model_copy(update={"indexer": indexer})
    specs = [with_ix if s else dense for s in sparse]
    extra = n_sparse * h * ix_heads
    notes = [
        f"MiniMax block-sparse attention on {n_sparse}/{n} layers: indexer {ix_heads} heads x "
        f"{ix_dim} (one {ix_dim}-dim key cached per token), top {blocks} x {block} = "
        f"{blocks * block} keys; {n - n_sparse} dense layers attend to every key",
        f"indexer head-weight projection counted by the core but absent in M3: +{extra:,} "
        f"params ({n_sparse} x {h} x {ix_heads})",
        f"top-k counted per key, not per {block}-key block: past {blocks * block} tokens a "
        f"query reads {(blocks - 1) * block + 1}..{blocks * block} keys (own block causal); "
        f"attended keys overstated by {(block - 1) / 2} on average",
    ]
    return _per_layer(specs), notes


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
        attn,
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
