"""DeepSeek-V4 (``deepseek_v4``, and the reference-format ``deepseek_ref``) as an equivalent
ModelArch.

V4 layer i keeps a 128-token sliding window of 512-dim MQA entries (one KV head, K = V) and,
when ``compress_ratios[i] = m > 0``, one compressed entry per m tokens: m = 4 is compressed
sparse attention (CSA: a lightning indexer with its own 128-dim keys picks ``index_topk``
entries), larger m (128) heavily compressed attention (HCA: all entries attended). The output
projection is grouped low-rank (``o_groups`` x ``o_lora_rank``); the residual stream is
``hc_mult`` hyper-connection copies; the first ``num_hash_layers`` MoE layers route by a
token-id table. ModelArch has one KV size per attention layer and one key cap per layer
kind, so the mapping preserves, in this order (approximations are also in ``notes``):

1. Total parameters: exact per-layer count of the reference layout (compressors, indexers,
   sinks, grouped output projection), carried by the attention spec through
   ``q_lora_rank`` (the only MLA field that enters nothing but the parameter count).
   Hyper-connection mixing weights (2 x (2+hc) x hc x hc x hidden per layer) are counted as
   norms (``norms_per_layer``): they are per-token GEMV weights like norm scales. Not
   counted: the hash layers' token-to-expert tables and the hc head (< 0.01%).
2. Active parameters: follows from 1 (all attention is active).
3. KV elements per token: layers with m > 0 become ``full_attention`` whose KV per token is
   the mean compressed growth (sum of 512/m + 128/4 for CSA indexer keys, over compressed
   layers); layers with m = 0 become ``sliding_attention`` (window 128). The 128-token
   window of compressed layers is dropped and the per-layer KV is rounded: -0.5% / -0.3% at
   128K (Flash / Pro), +0.04% / +0.3% at 1M.
4. Decode KV read: the model reads every cached entry; V4 reads top-k + window + indexer
   keys, so decode reads are ~4x too high at 128K (about right near 1K).
5. Prefill attention FLOPs: the equivalent head dim is chosen so a 64K-token prompt costs
   what V4 costs (window + top-k + HCA pairs at 4 x heads x 512 FLOPs, indexer pairs at
   2 x index heads x 128); shorter prompts are under-, longer ones over-estimated.

Also: hash-routed layers are modelled as learned routing; the MTP module
(``num_nextn_predict_layers``) is counted like a mean layer (V4's is window-only, without
hc). ``expert_dtype: fp4`` makes the routed experts MXFP4 beside the FP8 quantization config
(``hf_config.parse_hf_config``); quant.py probes V4's module names (``layers.N.ffn.experts``).
"""

from __future__ import annotations

from fractions import Fraction

from codesign.errors import UnsupportedModelError
from codesign.models.arch import AttentionSpec, MoeSpec
from codesign.models.derived import attention_pairs
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import Fields

CSA_RATIO = 4  # reference code: ratio 4 has the overlapping compressor and the indexer
PREFILL_REF_TOKENS = 65_536  # prompt length at which prefill attention FLOPs are matched


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
    if any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in ratios):
        raise UnsupportedModelError(f"{c.arch_name}: compress_ratios must be integers >= 0")
    return tuple(ratios[:layers])


def _compressor_params(hidden: int, ratio: int, dim: int) -> int:
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
        n += _compressor_params(h, ratio, d)
    if ratio == CSA_RATIO:
        ih, idim = c.int("index_n_heads"), c.int("index_head_dim")
        n += ql * ih * idim + h * ih + _compressor_params(h, ratio, idim)
    return n


def hc_params_per_layer(hc: int, hidden: int) -> tuple[int, int]:
    """(mixing weights, biases + scales) of one layer's two hyper-connections."""
    mix = (2 + hc) * hc
    return 2 * mix * hc * hidden, 2 * mix + 2 * 3


def kv_growth_per_token(ratios: tuple[int, ...], head_dim: int, index_dim: int) -> Fraction:
    """KV elements added per token over all layers (compressed entries + indexer keys)."""
    g = Fraction(0)
    for r in ratios:
        if r:
            g += Fraction(head_dim, r) + (Fraction(index_dim, r) if r == CSA_RATIO else 0)
    return g


def true_prefill_attention_flops(c: Cfg, ratios: tuple[int, ...], tokens: float) -> float:
    """Attention FLOPs of a ``tokens``-long prompt (continuous approximation of m-pooling)."""
    heads, d = _int(c, "num_attention_heads", "n_heads"), c.int("head_dim")
    window = _int(c, "sliding_window", "window_size")
    topk = c.int("index_topk")
    per_pair = 4 * heads * d  # QK and PV over one 512-dim entry (K = V)
    ix = 2 * c.int("index_n_heads") * c.int("index_head_dim")
    full = float(attention_pairs(tokens, 0))
    total = 0.0
    for r in ratios:
        total += per_pair * float(attention_pairs(tokens, 0, window))
        if r == CSA_RATIO:
            total += per_pair * float(attention_pairs(tokens, 0, r * topk)) / r
            total += ix * full / r
        elif r:
            total += per_pair * full / r
    return total


def true_decode_kv_read(c: Cfg, ratios: tuple[int, ...], context: int) -> int:
    """KV elements one decode token reads: window, top-k CSA entries + indexer keys, HCA."""
    d, idim = c.int("head_dim"), c.int("index_head_dim")
    window, topk = _int(c, "sliding_window", "window_size"), c.int("index_topk")
    n = 0
    for r in ratios:
        n += min(context, window) * d
        if r == CSA_RATIO:
            n += min(context // r, topk) * d + (context // r) * idim
        elif r:
            n += (context // r) * d
    return n


def parse_deepseek_v4(c: Cfg) -> Fields:
    """DeepSeek-V4 Flash / Pro (HF ``deepseek_v4`` and reference ``deepseek_ref`` configs)."""
    h = _int(c, "hidden_size", "dim")
    n = _int(c, "num_hidden_layers", "n_layers")
    heads = _int(c, "num_attention_heads", "n_heads")
    vocab = c.int("vocab_size")
    d, idim = c.int("head_dim"), c.int("index_head_dim")
    window = _int(c, "sliding_window", "window_size")
    ratios = layer_ratios(c, n)
    compressed = sum(1 for r in ratios if r)
    growth = kv_growth_per_token(ratios, d, idim)
    per_layer_kv = max(1, round(growth / compressed)) if compressed else d

    # prefill: equivalent pairs x 2 heads (d_eq + d_eq) = V4's attention FLOPs at the reference
    model_pairs = compressed * float(attention_pairs(PREFILL_REF_TOKENS, 0)) + (
        n - compressed
    ) * float(attention_pairs(PREFILL_REF_TOKENS, 0, window))
    true_pf = true_prefill_attention_flops(c, ratios, PREFILL_REF_TOKENS)
    d_eq = max(1, round(true_pf / model_pairs / (4 * heads)))

    # q_lora_rank carries the true attention parameters: solve the MLA count for it
    mean_attn = sum(true_attention_params(c, r) for r in ratios) / n
    fixed = h * per_layer_kv + per_layer_kv + 2 * per_layer_kv * heads * d_eq + heads * d_eq * h
    q_rank = max(1, round((mean_attn - fixed) / (h + 1 + heads * d_eq)))

    hc = _int(c, "hc_mult", default=1)
    hc_w, hc_rest = hc_params_per_layer(hc, h) if hc > 1 else (0, 0)
    n_hash = _int(c, "num_hash_layers", "n_hash_layers", default=0)
    experts = _int(c, "n_routed_experts")
    topk_e = _int(c, "num_experts_per_tok", "n_activated_experts")
    inter = _int(c, "moe_intermediate_size", "moe_inter_dim")
    n_shared = _int(c, "n_shared_experts", default=0)

    kv_true = {t: float(growth) * t + n * window * d for t in (131_072, 1_048_576)}
    kv_ours = {t: per_layer_kv * (compressed * t + (n - compressed) * window) for t in kv_true}
    kv_err = {t: kv_ours[t] / kv_true[t] - 1 for t in kv_true}
    ours_read = kv_ours[131_072]
    read_x = ours_read / true_decode_kv_read(c, ratios, 131_072)
    pf_x = {
        t: 4
        * heads
        * d_eq
        * float(
            compressed * attention_pairs(t, 0) + (n - compressed) * attention_pairs(t, 0, window)
        )
        / true_prefill_attention_flops(c, ratios, t)
        for t in (8_192, 131_072)
    }
    notes = [
        f"CSA/HCA attention: {compressed} compressed layers as full attention with "
        f"{per_layer_kv} KV elements/token (mean growth, {float(growth):.0f} in all), "
        f"{n - compressed} window-only layers as sliding ({window}); the {window}-token window "
        f"of compressed layers is dropped: KV {kv_err[131_072]:+.1%} at 128K, "
        f"{kv_err[1_048_576]:+.2%} at 1M",
        f"sparse top-{c.int('index_topk')} selection not modelled: decode reads the whole "
        f"compressed cache, {read_x:.1f}x V4's KV read at 128K",
        f"equivalent attention dims (MLA latent {per_layer_kv}, head dim {d_eq}, no rope): "
        f"prefill attention FLOPs matched at {PREFILL_REF_TOKENS // 1024}K tokens, "
        f"{pf_x[8_192]:.2f}x at 8K, {pf_x[131_072]:.2f}x at 128K",
        f"q_lora_rank {q_rank} stands for the true {c.int('q_lora_rank')} plus grouped output "
        f"projection ({c.int('o_groups')} x {c.int('o_lora_rank')}), compressors, indexers, "
        f"sinks ({mean_attn / 1e6:.1f}M attention params/layer)",
    ]
    if hc > 1:
        notes.append(
            f"hyper-connections (hc_mult {hc}): {n * hc_w / 1e6:.1f}M mixing weights counted "
            f"as norms; {n * hc_rest + hc * hc * h} hc biases/head params not counted"
        )
    if n_hash:
        notes.append(
            f"first {n_hash} MoE layers hash-routed: modelled as learned routing "
            f"({n_hash * vocab * topk_e / 1e6:.1f}M token-to-expert table entries not counted)"
        )
    if c.get("expert_dtype") == "fp4":
        notes.append("checkpoint stores routed experts in FP4 (expert_dtype fp4, MXFP4 layout)")
    notes.append("MTP layer counted like a mean decoder layer (V4's is window-only)")

    attention = AttentionSpec(
        kind="mla",
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=d_eq,
        v_head_dim=d_eq,
        q_lora_rank=q_rank,
        kv_lora_rank=per_layer_kv,
        qk_nope_head_dim=d_eq,
        qk_rope_head_dim=0,
        sliding_window_tokens=window,
        attention_sinks=True,
    )
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
        "attention": attention,
        "moe": moe,
        "layer_mixers": tuple("full_attention" if r else "sliding_attention" for r in ratios),
        "layer_ffns": ("moe",) * n,
        "norms_per_layer": 2 + (hc_w // h),
        "num_mtp_layers": _int(c, "num_nextn_predict_layers", "n_mtp_layers", default=0),
        "notes": tuple(notes),
    }


__all__ = [
    "CSA_RATIO",
    "PREFILL_REF_TOKENS",
    "hc_params_per_layer",
    "kv_growth_per_token",
    "layer_ratios",
    "parse_deepseek_v4",
    "true_attention_params",
    "true_decode_kv_read",
    "true_prefill_attention_flops",
]
