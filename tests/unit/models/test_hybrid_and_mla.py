"""Hybrid (linear attention, Mamba) and MLA/DSA descriptions from the stored configs."""

from __future__ import annotations

import pytest

from codesign.models import (
    decode_flops,
    kv_elements_per_token,
    kv_state_bytes_per_sequence,
    load_model,
    param_counts,
)

pytestmark = pytest.mark.usefixtures("config_dir")


def test_qwen3_5_27b_hybrid_layers_and_state() -> None:
    arch = load_model("Qwen/Qwen3.5-27B")
    assert arch.count_mixers("linear_attention") == 48
    assert arch.count_mixers("full_attention") == 16
    # 16 full layers x 4 KV heads x (256 + 256)
    assert kv_elements_per_token(arch) == 32_768
    # per linear layer: fp32 state 48 heads x 128 x 128, bf16 conv (4-1) x (2*16*128 + 48*128)
    per_layer = 48 * 128 * 128 * 4 + 3 * 10_240 * 2
    assert kv_state_bytes_per_sequence(arch) == 48 * per_layer
    assert arch.num_mtp_layers == 1


def test_qwen3_5_moe_has_gated_shared_expert() -> None:
    arch = load_model("Qwen/Qwen3.5-397B-A17B")
    assert arch.moe.num_experts == 512 and arch.moe.experts_per_token == 10
    assert arch.moe.shared_intermediate_size == 1024 and arch.moe.shared_expert_gate
    c = param_counts(arch)
    assert abs(c.total - 397e9) / 397e9 < 0.01
    assert abs(c.active - 17e9) / 17e9 < 0.03


def test_nemotron_h_mamba_blocks() -> None:
    arch = load_model("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    assert arch.count_mixers("mamba") == 23 and arch.count_mixers("full_attention") == 6
    assert arch.count_ffns("moe") == 23
    # 6 attention layers x 2 KV heads x (128 + 128)
    assert kv_elements_per_token(arch) == 6 * 2 * 256
    assert kv_state_bytes_per_sequence(arch) > 0


def test_glm5_is_mla_with_dsa_indexer() -> None:
    arch = load_model("zai-org/GLM-5")
    a = arch.attention
    assert a.kind == "mla" and a.kv_lora_rank == 512 and a.qk_rope_head_dim == 64
    assert a.indexer is not None and a.indexer.topk_tokens == 2048
    # latent 512 + rope 64 + indexer key 128 per layer, 78 layers
    assert kv_elements_per_token(arch) == (512 + 64 + 128) * 78


def test_dsa_caps_attention_at_topk() -> None:
    v32 = load_model("deepseek-ai/DeepSeek-V3.2")
    a = v32.attention
    # Beyond top-k the main attention stops growing; only the indexer grows.
    slope = decode_flops(v32, 200_001) - decode_flops(v32, 200_000)
    assert slope == pytest.approx(61 * 2 * a.indexer.num_heads * a.indexer.head_dim)


def test_deepseek_dense_and_moe_layers() -> None:
    arch = load_model("deepseek-ai/DeepSeek-V3")
    assert arch.layer_ffns[:3] == ("dense",) * 3 and arch.count_ffns("moe") == 58
    assert arch.moe.num_shared_experts == 1 and arch.num_mtp_layers == 1
