"""Attention layers of different shapes in one model: caches, reads and FLOPs by hand."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from codesign.models import ModelArch, kv_elements, kv_elements_per_token, param_counts
from codesign.models.arch import AttentionSpec, DenseMlpSpec, IndexerSpec
from codesign.models.attn_layers import AttnGroup, attention_groups, attention_pairs
from codesign.models.derived import prefill_flops
from codesign.models.params import attention_spec_params

SLIDE = AttentionSpec(
    kind="gqa",
    num_heads=16,
    num_kv_heads=8,
    head_dim=256,
    v_head_dim=256,
    sliding_window_tokens=1024,
)
GLOBAL = AttentionSpec(kind="gqa", num_heads=16, num_kv_heads=2, head_dim=512, v_head_dim=512)


def two_shapes() -> ModelArch:
    """Gemma-4-like: 5 sliding layers (8 kv x 256, window 1024), then 1 global (2 kv x 512)."""
    return ModelArch(
        id="two-shapes",
        family="test",
        architecture="Test",
        hidden_size=2048,
        num_layers=6,
        vocab_size=1000,
        max_context_tokens=131072,
        attention=SLIDE,
        extra_attention=(GLOBAL,),
        layer_attention=(0, 0, 0, 0, 0, 1),
        dense_mlp=DenseMlpSpec(intermediate_size=4096),
        layer_mixers=("sliding_attention",) * 5 + ("full_attention",),
        layer_ffns=("dense",) * 6,
    )


def test_each_layer_keeps_its_own_shape() -> None:
    arch = two_shapes()
    groups = attention_groups(arch)
    assert [(g.layers, g.kv_elems, g.cap) for g in groups] == [(5, 4096, 1024), (1, 2048, None)]
    # only the global layer grows: 2 kv x (512 + 512) per token
    assert kv_elements_per_token(arch) == 2048
    # at 4096 tokens: 5 x 4096 elements x 1024 window + 2048 x 4096
    assert kv_elements(arch, 4096) == 5 * 4096 * 1024 + 2048 * 4096
    per = attention_spec_params(SLIDE, 2048), attention_spec_params(GLOBAL, 2048)
    assert param_counts(arch).attention == 5 * per[0] + per[1]
    assert per[0] == 2048 * (16 * 256 + 8 * 512) + 16 * 256 * 2048
    # prefill of 2048 tokens: sliding pairs capped at 1024 keys, global pairs uncapped
    total = prefill_flops(arch, 2048)
    gemm = 2 * param_counts(arch).active_gemm * 2048
    pairs_s = attention_pairs(2048, 0, 1024)
    pairs_g = attention_pairs(2048, 0, None)
    assert pairs_s == 1024 * 1025 / 2 + 1024 * 1024
    assert total - gemm == pytest.approx(5 * 2 * 16 * 512 * pairs_s + 1 * 2 * 16 * 1024 * pairs_g)


def test_layer_attention_is_validated() -> None:
    base = two_shapes().model_dump()
    with pytest.raises(ValidationError, match="layer_attention has 2 entries"):
        ModelArch(**{**base, "layer_attention": (0, 1)})
    with pytest.raises(ValidationError, match="indexes \\[2\\]"):
        ModelArch(**{**base, "layer_attention": (0, 0, 0, 0, 0, 2)})
    with pytest.raises(ValidationError, match="extra_attention is given"):
        ModelArch(**{**base, "layer_attention": ()})


def test_compressed_layer_by_hand() -> None:
    """DeepSeek-V4-style: a raw 128-token window plus one 512-wide entry per 4 tokens, the
    compressed part read through a top-512 indexer over the compressed entries."""
    spec = AttentionSpec(
        kind="mla",
        num_heads=64,
        num_kv_heads=64,
        head_dim=512,
        v_head_dim=512,
        kv_lora_rank=448,
        qk_nope_head_dim=448,
        qk_rope_head_dim=64,
        sliding_window_tokens=128,
        kv_compress_ratio=4,
        indexer=IndexerSpec(num_heads=64, head_dim=128, topk_tokens=512),
    )
    g = AttnGroup(spec, "full_attention", 1)
    assert g.compressed and g.growth_per_token == 0.25
    ctx = 65536.0
    assert g.entries(ctx) == 128 + ctx / 4
    assert g.attended(ctx) == 128 + 512  # window + top-k compressed entries
    assert g.scored(ctx) == ctx / 4  # the indexer scores every compressed entry
    # before the window fills and below top-k: every token is read once raw, once / 4
    assert g.attended(100.0) == 100 + 25
    # pairs: window part capped at 128; compressed part sum_p min(p/4, 512)
    n = 4096.0
    want = attention_pairs(n, 0, 128) + attention_pairs(n, 0, 2048) / 4
    assert g.pairs(n, 0.0) == pytest.approx(want)
    assert g.scored_pairs(n, 0.0) == pytest.approx(attention_pairs(n, 0, None) / 4)
    # the cache grows by (448 + 64 + 128) / 4 elements per token
    assert g.kv_elems == 448 + 64 + 128
