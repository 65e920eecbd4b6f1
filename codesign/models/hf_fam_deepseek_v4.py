"""DeepSeek-V4 (``deepseek_v4``, and the reference-format ``deepseek_ref``): one exact
attention spec per layer kind.

Every V4 attention layer is MQA-shaped: ``num_attention_heads`` query heads over ONE cached
512-dim vector per entry that serves as key and value (``head_dim`` 512, its last
``qk_rope_head_dim`` dims rotated, so the rope part is inside the 512), a low-rank query
(``q_lora_rank``), a per-head attention sink and a raw window of the last ``sliding_window``
(128) tokens. ``compress_ratios[i]`` picks the layer kind:

- 0: window only -> ``sliding_attention`` with spec 0 (also the MTP layer's kind);
- 4 (CSA): ``full_attention`` with ``kv_compress_ratio`` 4 and the lightning indexer
  (``index_n_heads`` x ``index_head_dim``, top-``index_topk`` compressed entries; one
  indexer key cached per compressed entry);
- m > 4 (HCA, 128): ``full_attention`` with ``kv_compress_ratio`` m, every entry attended.

Each is ``kind="gqa"``, ``num_kv_heads=1``, ``kv_shared=True`` (MLA would add a kv_b
projection V4 does not have). Parameters the GQA formula does not express are counted in
``norms_per_layer`` (``extra_norms``): per layer the kv_norm, the KV compressor (ape, wkv,
wgate, norm; doubled width at ratio 4 for the overlapping windows), the indexer's own
compressor in place of the formula's DSA key projection, the hyper-connection mixing
weights, biases and scales (``hc_mult`` residual copies), the hc head and the hash layers'
token-to-expert tables; what is left over (under one hidden vector per layer) is
``uncounted_params``. The output projection is grouped low-rank (``o_groups`` x
``o_lora_rank``, AttentionSpec fields of the same names). Hash-routed layers are modelled
as learned routing; the MTP module (``num_nextn_predict_layers``) is a window-only decoder
layer (its hc weights not counted).
``expert_dtype: fp4`` makes the routed experts MXFP4 (``hf_config.parse_hf_config``);
quant.py probes V4's module names (``layers.N.ffn.experts``).
"""

from __future__ import annotations

from codesign.errors import UnsupportedModelError
from codesign.models.arch import AttentionSpec, IndexerSpec, MoeSpec
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import Fields
from codesign.models.params import attention_spec_params

CSA_RATIO = 4  # reference code: ratio 4 has the overlapping compressor and the indexer


def _int(c: Cfg, *keys: str, default: int | None = None) -> int:
    """HF name first, then the reference-code name (``dim``, ``n_layers``...)."""
    if default is not None and not any(k in c for k in keys):
        return default
    return c.int(*keys)


def layer_ratios(c: Cfg, layers: int) -> tuple[int, ...]:
    ratios = c.req("compress_ratios")
    if not isinstance(ratios, list) or len(ratios) < layers:
        raise UnsupportedModelError(
            f"{c.arch_name}: compress_ratios needs {layers} entries, got {ratios!r}"
        )
    bad = [r for r in ratios if isinstance(r, bool) or not isinstance(r, int) or r < 0]
    if bad or any(r == 1 for r in ratios):
        raise UnsupportedModelError(f"{c.arch_name}: compress_ratios must be 0 or >= 2")
    return tuple(ratios[:layers])


def compressor_params(hidden: int, ratio: int, dim: int) -> int:
    """Gated pooling: ape (ratio x coff*dim), wkv and wgate (hidden x coff*dim), norm."""
    coff = 2 if ratio == CSA_RATIO else 1
    return ratio * coff * dim + 2 * hidden * coff * dim + dim


def true_attention_params(c: Cfg, ratio: int) -> int:
    """Parameters of one V4 attention block with compress ratio ``ratio`` (reference code)."""
    h, heads = _int(c, "hidden_size", "dim"), _int(c, "num_attention_heads", "n_heads")
    d, ql = c.int("head_dim"), c.int("q_lora_rank")
    groups, o_rank = c.int("o_groups"), c.int("o_lora_rank")
    n = heads  # attention sink per head
    n += h * ql + ql + ql * heads * d  # wq_a, q_norm, wq_b
    n += h * d + d  # wkv (one shared K=V head), kv_norm
    n += heads * d * o_rank + groups * o_rank * h  # grouped wo_a, wo_b
    if ratio:
        n += compressor_params(h, ratio, d)
    if ratio == CSA_RATIO:
        ih, idim = c.int("index_n_heads"), c.int("index_head_dim")
        n += ql * ih * idim + h * ih + compressor_params(h, ratio, idim)
    return n


def hc_params_per_layer(hc: int, hidden: int) -> int:
    """Two hyper-connections per layer: mixing weights ((2+hc) hc x hc hidden), base, scale."""
    mix = (2 + hc) * hc
    return 2 * (mix * hc * hidden + mix + 3)


def attention_specs(c: Cfg, ratios: tuple[int, ...]) -> tuple[AttentionSpec, ...]:
    """Spec 0: window only; then one spec per distinct compress ratio, in first-seen order."""
    heads = _int(c, "num_attention_heads", "n_heads")
    d = c.int("head_dim")
    base = AttentionSpec(
        kind="gqa",
        num_heads=heads,
        num_kv_heads=1,
        head_dim=d,
        v_head_dim=d,
        q_lora_rank=c.int("q_lora_rank"),
        kv_shared=True,
        sliding_window_tokens=_int(c, "sliding_window", "window_size"),
        attention_sinks=True,
        o_lora_rank=c.int("o_lora_rank"),
        o_groups=c.int("o_groups"),
    )
    specs = [base]
    for r in dict.fromkeys(r for r in ratios if r):
        ix = None
        if r == CSA_RATIO:
            ix = IndexerSpec(
                num_heads=c.int("index_n_heads"),
                head_dim=c.int("index_head_dim"),
                topk_tokens=c.int("index_topk"),
            )
        specs.append(base.model_copy(update={"kv_compress_ratio": r, "indexer": ix}))
    return tuple(specs)


def _missing_params(c: Cfg, ratios: tuple[int, ...]) -> int:
    """Reference-layout parameters the ModelArch formulas leave out (attention, hc, hash),
    beyond what the specs count."""
    h = _int(c, "hidden_size", "dim")
    specs = attention_specs(c, ratios)
    by_ratio = {s.kv_compress_ratio or 0: s for s in specs}
    out = sum(true_attention_params(c, r) - attention_spec_params(by_ratio[r], h) for r in ratios)
    hc = _int(c, "hc_mult", default=1)
    if hc > 1:
        out += len(ratios) * hc_params_per_layer(hc, h) + hc * hc * h + hc + 1  # + hc head
    n_hash = _int(c, "num_hash_layers", "n_hash_layers", default=0)
    topk_e = _int(c, "num_experts_per_tok", "n_activated_experts")
    # hash layers: a token-to-expert table (vocab x top-k) instead of the gate bias
    out += n_hash * (c.int("vocab_size") * topk_e - _int(c, "n_routed_experts"))
    return out


def extra_norms(c: Cfg) -> int:
    """Hidden-size vectors per layer that carry the parameters the formulas leave out."""
    n, h = _int(c, "num_hidden_layers", "n_layers"), _int(c, "hidden_size", "dim")
    return max(0, _missing_params(c, layer_ratios(c, n)) // (n * h))


def uncounted_params(c: Cfg) -> int:
    """Reference-layout parameters (without MTP) minus the parsed ModelArch's: the remainder
    under one hidden vector per layer."""
    n, h = _int(c, "num_hidden_layers", "n_layers"), _int(c, "hidden_size", "dim")
    missing = _missing_params(c, layer_ratios(c, n))
    return missing - extra_norms(c) * n * h


def parse_deepseek_v4(c: Cfg) -> Fields:
    """DeepSeek-V4 Flash / Pro (HF ``deepseek_v4`` and reference ``deepseek_ref`` configs)."""
    h = _int(c, "hidden_size", "dim")
    n = _int(c, "num_hidden_layers", "n_layers")
    vocab = c.int("vocab_size")
    ratios = layer_ratios(c, n)
    specs = attention_specs(c, ratios)
    index_of = {s.kv_compress_ratio or 0: i for i, s in enumerate(specs)}
    window = specs[0].sliding_window_tokens
    hc = _int(c, "hc_mult", default=1)
    n_hash = _int(c, "num_hash_layers", "n_hash_layers", default=0)
    experts = _int(c, "n_routed_experts")
    topk_e = _int(c, "num_experts_per_tok", "n_activated_experts")
    inter = _int(c, "moe_intermediate_size", "moe_inter_dim")
    n_shared = _int(c, "n_shared_experts", default=0)
    n_csa = sum(1 for r in ratios if r == CSA_RATIO)
    n_hca = sum(1 for r in ratios if r and r != CSA_RATIO)
    extra, left = extra_norms(c), uncounted_params(c)

    notes = [
        f"V4 attention per layer kind: {n - n_csa - n_hca} window-only ({window} tokens), "
        f"{n_csa} CSA (1/{CSA_RATIO} compressed + window, indexer top-{c.int('index_topk')}), "
        f"{n_hca} HCA (heavily compressed + window); one shared K=V head of "
        f"{c.int('head_dim')} (rope inside)",
        "compressors, kv_norm, indexer compressors"
        + (", hyper-connections" if hc > 1 else "")
        + (", hash tables" if n_hash else "")
        + f" counted as {extra} extra norms/layer",
    ]
    notes.append(f"{left} parameters left out (remainder under one norm vector per layer)")
    if n_hash:
        notes.append(f"first {n_hash} MoE layers hash-routed: modelled as learned routing")
    if c.get("expert_dtype") == "fp4":
        notes.append("checkpoint stores routed experts in FP4 (expert_dtype fp4, MXFP4 layout)")
    notes.append("MTP layer: a window-only decoder layer (its hyper-connections not counted)")

    moe = MoeSpec(
        num_experts=experts,
        experts_per_token=topk_e,
        expert_intermediate_size=inter,
        num_shared_experts=n_shared,
        shared_intermediate_size=inter if n_shared else 0,
        router_bias=True,
    )
    return {
        "hidden_size": h,
        "num_layers": n,
        "vocab_size": vocab,
        "tie_word_embeddings": bool(c.get("tie_word_embeddings", False)),
        "max_context_tokens": _int(c, "max_position_embeddings", "max_seq_len"),
        "attention": specs[0],
        "extra_attention": specs[1:],
        "layer_attention": tuple(index_of[r] for r in ratios) if len(specs) > 1 else (),
        "moe": moe,
        "layer_mixers": tuple("full_attention" if r else "sliding_attention" for r in ratios),
        "layer_ffns": ("moe",) * n,
        "norms_per_layer": 2 + extra,
        "num_mtp_layers": _int(c, "num_nextn_predict_layers", "n_mtp_layers", default=0),
        "notes": tuple(notes),
    }


__all__ = [
    "CSA_RATIO",
    "attention_specs",
    "compressor_params",
    "extra_norms",
    "hc_params_per_layer",
    "layer_ratios",
    "parse_deepseek_v4",
    "true_attention_params",
    "uncounted_params",
]
