"""Gemma 4 (``gemma4`` / ``gemma4_text``) and MiMo-V2-Flash (``mimo_v2_flash``) parsers.

Both interleave sliding-window and full-attention layers whose attention shapes differ;
each kind gets its own exact ``AttentionSpec`` (``attention`` = the kind of layer 0,
``extra_attention`` = the other, ``layer_attention`` = per layer which one):

- Gemma 4: sliding layers ``num_key_value_heads`` x ``head_dim`` (window
  ``sliding_window``), global layers ``num_global_key_value_heads`` x ``global_head_dim``
  (K=V), both with ``num_attention_heads`` query heads and q/k norms.
- MiMo-V2-Flash: full layers ``num_attention_heads`` / ``num_key_value_heads`` x
  ``head_dim`` / ``v_head_dim``, sliding layers the ``swa_*`` fields (window
  ``sliding_window_size``), each with its own attention-sink flag.

Gemma K=V (``attention_k_eq_v``): the checkpoint has no ``v_proj`` on global layers, but
vLLM's ``Gemma4Attention`` (vllm/model_executor/models/gemma4.py) loads the K weights into
the V slot of its fused ``qkv_proj`` and caches K (k_norm + RoPE) and V (weightless v_norm,
no RoPE) separately, as SGLang's ``gemma4_causal.py`` does. The two cached tensors differ,
so ``kv_shared`` stays False: cache, weight memory and GEMM FLOPs follow the serving layout,
and the parameter total is the checkpoint's plus the duplicated V slot (named in notes).

Still not exact (with notes): Gemma ``num_kv_shared_layers`` (layers reading an earlier
layer's cache are described with their kind's spec, so their cache is counted as if
stored), ``use_double_wide_mlp`` (one mean intermediate size), per-layer embeddings (GEMMs
folded into the MLP, lookup table not counted); MiMo's MTP modules (not in config.json).
"""

from __future__ import annotations

from collections.abc import Sequence

from codesign.errors import UnsupportedModelError
from codesign.models.arch import AttentionSpec, DenseMlpSpec, MoeSpec
from codesign.models.attn_layers import kv_elems_per_entry
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import Fields, _common

FULL, SLIDING = "full_attention", "sliding_attention"


def _assign(f: Fields, mixers: Sequence[str], specs: dict[str, AttentionSpec]) -> None:
    """Set the per-layer mixers and attention specs (index 0 = the spec of layer 0)."""
    order = list(dict.fromkeys(mixers))
    f["layer_mixers"] = tuple(mixers)
    f["attention"] = specs[order[0]]
    f["extra_attention"] = tuple(specs[m] for m in order[1:])
    f["layer_attention"] = tuple(order.index(m) for m in mixers) if len(order) > 1 else ()


def _describe(mixers: Sequence[str], specs: dict[str, AttentionSpec]) -> str:
    parts = []
    for m in dict.fromkeys(mixers):
        a = specs[m]
        s = f"{sum(x == m for x in mixers)} {m.split('_')[0]} layers: {a.num_heads} q / "
        s += f"{a.num_kv_heads} kv heads x {a.head_dim}/{a.v_head_dim}"
        s += f", window {a.sliding_window_tokens}" if m == SLIDING else ""
        s += " K=V" * a.kv_shared + ", sinks" * a.attention_sinks
        parts.append(s)
    return "attention per layer kind (exact): " + "; ".join(parts)


def _cache(spec: AttentionSpec, mixer: str, ctx: int) -> int:
    keys = min(ctx, spec.sliding_window_tokens or ctx) if mixer == SLIDING else ctx
    return kv_elems_per_entry(spec) * keys


def parse_gemma4(c: Cfg) -> Fields:
    """Gemma 4 text: sliding/global layers of different shapes, optional MoE, KV sharing, PLE."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    types = list(c.req("layer_types"))
    if len(types) != n or set(types) - {FULL, SLIDING}:
        raise UnsupportedModelError(
            f"{c.arch_name}: layer_types must be {n} entries of {FULL} / {SLIDING}"
        )
    heads, k_eq_v = c.int("num_attention_heads"), bool(c.get("attention_k_eq_v", False))
    local_dim, bias = c.int("head_dim"), bool(c.get("attention_bias", False))
    g_dim = c.get("global_head_dim") or local_dim
    g_kv = c.int("num_global_key_value_heads") if k_eq_v else c.int("num_key_value_heads")
    common = {"kind": "gqa", "num_heads": heads, "qk_norm": True, "bias": bias}
    specs = {
        SLIDING: AttentionSpec(
            **common,
            num_kv_heads=c.int("num_key_value_heads"),
            head_dim=local_dim,
            v_head_dim=local_dim,
            sliding_window_tokens=c.int("sliding_window"),
        ),
        FULL: AttentionSpec(**common, num_kv_heads=g_kv, head_dim=g_dim, v_head_dim=g_dim),
    }
    _assign(f, types, specs)
    notes = [_describe(types, specs)]
    if k_eq_v:
        dup = types.count(FULL) * h * g_kv * g_dim
        notes.append(
            "global layers K=V (no v_proj): served as in vLLM/SGLang, K weights loaded into the "
            "V slot of the fused qkv_proj and K and V cached separately (they differ: k_norm + "
            f"RoPE vs v_norm), so kv_shared=False; the checkpoint has {dup:,} fewer params"
        )
    shared_from = n - c.get("num_kv_shared_layers", 0)
    if shared_from < n:
        stored = sum(_cache(specs[t], t, 131072) for t in types[:shared_from])
        ours = sum(_cache(specs[t], t, 131072) for t in types)
        notes.append(
            f"layers {shared_from}..{n - 1} read an earlier layer's cache "
            "(num_kv_shared_layers): described with their kind's spec, so k/v projections, "
            "FLOPs and cache reads are counted as served, but their cache as stored too: KV "
            f"at 131072 tokens {ours / stored - 1:+.1%}"
        )
    wide = 2 if c.get("use_double_wide_mlp") else 1
    sizes = [c.int("intermediate_size") * (wide if i >= shared_from else 1) for i in range(n)]
    inter = round(sum(sizes) / n)
    if inter * n != sum(sizes):
        notes.append(f"double-wide MLP layers averaged: intermediate {inter} (mean)")
    elif len(set(sizes)) > 1:
        notes.append(f"double-wide MLP layers as the mean intermediate {inter} (sum exact)")
    ple = c.get("hidden_size_per_layer_input", 0)
    if ple:
        inter += ple
        table = c.get("vocab_size_per_layer_input", f["vocab_size"]) * n * ple
        notes.append(
            f"per-layer embeddings: GEMMs folded into the MLP (+{ple} intermediate); lookup "
            f"table of {table:,} params not counted"
        )
    if c.get("enable_moe_block"):
        f["moe"] = MoeSpec(
            num_experts=c.int("num_experts"),
            experts_per_token=c.int("top_k_experts", "num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size", "expert_intermediate_size"),
            num_shared_experts=1,
            shared_intermediate_size=inter,
            router_bias=True,
        )
        f["layer_ffns"] = ("moe",) * n
        f["norms_per_layer"] = 8 + (1 if ple else 0)
        notes.append(
            "MoE: dense MLP beside the experts = shared expert; router per-expert scale = router "
            f"bias; router h-scale counted as a norm (norms_per_layer {f['norms_per_layer']})"
        )
    else:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=inter)
        f["layer_ffns"] = ("dense",) * n
        f["norms_per_layer"] = 4 + (1 if ple else 0)
    notes.append("layer_scalar (one number per layer) not counted")
    f["notes"] = tuple(notes)
    return f


def parse_mimo_v2_flash(c: Cfg) -> Fields:
    """MiMo-V2-Flash: 5:1 sliding/full attention with per-kind heads, MoE after layer 0."""
    f = _common(c)
    n = f["num_layers"]
    pattern = c.req("hybrid_layer_pattern")  # 1 = sliding window, 0 = full
    moe_flags = c.req("moe_layer_freq")  # per layer: 1 = MoE, 0 = dense MLP
    if not isinstance(moe_flags, list) or len(pattern) != n or len(moe_flags) != n:
        raise UnsupportedModelError(
            f"{c.arch_name}: hybrid_layer_pattern and moe_layer_freq must be lists of "
            f"num_hidden_layers={n} entries"
        )
    bias = bool(c.get("attention_bias", False))
    d, swa_d = c.int("head_dim"), c.int("swa_head_dim", "head_dim")
    specs = {
        FULL: AttentionSpec(
            kind="gqa",
            num_heads=c.int("num_attention_heads"),
            num_kv_heads=c.int("num_key_value_heads"),
            head_dim=d,
            v_head_dim=c.get("v_head_dim") or d,
            attention_sinks=bool(c.get("add_full_attention_sink_bias")),
            bias=bias,
        ),
        SLIDING: AttentionSpec(
            kind="gqa",
            num_heads=c.int("swa_num_attention_heads", "num_attention_heads"),
            num_kv_heads=c.int("swa_num_key_value_heads", "num_key_value_heads"),
            head_dim=swa_d,
            v_head_dim=c.get("swa_v_head_dim") or swa_d,
            sliding_window_tokens=c.int("sliding_window_size", "sliding_window"),
            attention_sinks=bool(c.get("add_swa_attention_sink_bias")),
            bias=bias,
        ),
    }
    mixers = [SLIDING if p else FULL for p in pattern]
    _assign(f, mixers, specs)
    ffns = tuple("moe" if m else "dense" for m in moe_flags)
    f["layer_ffns"] = ffns
    if "moe" in ffns:
        f["moe"] = MoeSpec(
            num_experts=c.int("n_routed_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size"),
            router_bias=c.get("topk_method") == "noaux_tc",
        )
    if "dense" in ffns:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
    f["notes"] = (
        _describe(mixers, specs),
        "MTP modules (model card) are not described by config.json: not counted",
    )
    return f
