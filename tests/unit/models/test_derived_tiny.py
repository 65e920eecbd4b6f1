"""Hand-computed parameters, weight bytes, KV bytes and FLOPs of tiny synthetic configs."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models import (
    decode_flops,
    kv_bytes,
    kv_bytes_per_token,
    load_model,
    param_counts,
    prefill_flops,
    weight_bytes,
    weight_bytes_breakdown,
)

# Tiny Llama: h=64, I=128, 4 heads of 16, 2 KV heads, 2 layers, vocab 100.
ATTN = 64 * 64 + 2 * 64 * 32 + 64 * 64  # q, k, v, o = 12,288
MLP = 3 * 64 * 128  # gate, up, down = 24,576
NORMS = 2 * 2 * 64 + 64  # two per layer + final = 320
EMB = 100 * 64
TOTAL = 2 * (ATTN + MLP) + NORMS + 2 * EMB  # 86,848
GEMM = TOTAL - EMB  # embeddings are a lookup: 80,448
PER_PAIR = 2 * 4 * (16 + 16)  # QK^T + PV per (query, key) pair and layer = 256


@pytest.fixture
def tiny(write_config, tiny_llama):
    return load_model(write_config(tiny_llama()))


def test_params(tiny) -> None:
    c = param_counts(tiny)
    assert (c.attention, c.dense_mlp, c.norms, c.embeddings, c.lm_head) == (
        2 * ATTN,
        2 * MLP,
        NORMS,
        EMB,
        EMB,
    )
    assert c.total == TOTAL == 86_848 and c.active == TOTAL and c.active_gemm == GEMM


def test_tied_embeddings_drop_lm_head(write_config, tiny_llama) -> None:
    c = param_counts(load_model(write_config(tiny_llama(tie_word_embeddings=True))))
    assert c.lm_head == 0 and c.total == TOTAL - EMB


def test_weight_bytes(tiny) -> None:
    assert weight_bytes(tiny) == TOTAL * 2
    # fp8 GEMM weights; embeddings, lm_head and norms stay bf16
    b = weight_bytes_breakdown(tiny, "fp8")
    assert b["attention"] == 2 * ATTN and b["dense_mlp"] == 2 * MLP
    assert b["embeddings"] == EMB * 2 and b["norms"] == NORMS * 2
    assert weight_bytes(tiny, {"embeddings": "fp8"}) == TOTAL * 2 - EMB


def test_kv(tiny) -> None:
    # 2 layers x 2 KV heads x (16 + 16) = 128 elements per token
    assert kv_bytes_per_token(tiny, "bf16") == 256
    assert kv_bytes_per_token(tiny, "fp8") == 128
    np.testing.assert_array_equal(kv_bytes(tiny, np.array([0, 10]), "bf16"), [0, 2560])


def test_prefill_flops_hand_computed(tiny) -> None:
    # 10 new tokens, empty cache: 55 causal pairs per layer
    assert prefill_flops(tiny, 10) == 2 * GEMM * 10 + 2 * 55 * PER_PAIR == 1_637_120
    # 10 new tokens after 5 cached: pairs = (6 + ... + 15) = 105
    assert prefill_flops(tiny, 10, 5) == 2 * GEMM * 10 + 2 * 105 * PER_PAIR
    # decode after 100 cached tokens attends to 101 keys
    assert decode_flops(tiny, 100) == 2 * GEMM + 2 * 101 * PER_PAIR == 212_608


def test_prefill_flops_vectorised(tiny) -> None:
    new = np.array([10, 10, 1])
    before = np.array([0, 5, 100])
    out = prefill_flops(tiny, new, before)
    assert out.shape == (3,)
    np.testing.assert_array_equal(
        out, [prefill_flops(tiny, 10), prefill_flops(tiny, 10, 5), decode_flops(tiny, 100)]
    )


def test_sliding_window_caps_pairs_and_kv(write_config, tiny_llama) -> None:
    # Qwen2-style: layer 0 full, layer 1 sliding with a 4-token window.
    cfg = tiny_llama(
        model_type="qwen2", use_sliding_window=True, sliding_window=4, max_window_layers=1
    )
    arch = load_model(write_config(cfg))
    assert arch.layer_mixers == ("full_attention", "sliding_attention")
    gemm = 2 * param_counts(arch).active_gemm * 10
    # full: 55 pairs; sliding: 1 + 2 + 3 + 4 + 6 x 4 = 34 pairs
    assert prefill_flops(arch, 10) - gemm == (55 + 34) * PER_PAIR
    # KV: full layer grows (64 elements/token), sliding layer keeps <= 4 tokens
    assert kv_bytes_per_token(arch, "bf16") == 128
    assert kv_bytes(arch, 10, "bf16") == (64 * 10 + 64 * 4) * 2


def test_moe_active_params(write_config, tiny_llama) -> None:
    cfg = tiny_llama(
        architectures=["MixtralForCausalLM"],
        model_type="mixtral",
        num_local_experts=4,
        num_experts_per_tok=2,
    )
    c = param_counts(load_model(write_config(cfg)))
    assert c.routed_experts == 2 * 4 * MLP and c.active_routed_experts == 2 * 2 * MLP
    assert c.router == 2 * 64 * 4
    assert c.total - c.active == 2 * 2 * MLP
