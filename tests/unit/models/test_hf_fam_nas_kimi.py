"""Nemotron-NAS (DeciLM) and Kimi Linear (KDA) parsers: counts against published figures,
independent hand counts from the configs, KV elements, profiles and notes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from codesign.errors import UnsupportedModelError
from codesign.models import ModelArch, param_counts
from codesign.models.derived import kv_elements_per_token, kv_state_bytes_per_sequence
from codesign.models.hf_config import parse_hf_config
from codesign.perf.profile import build_profile

B = 1e9
NAS = "nvidia--Llama-3_3-Nemotron-Super-49B-v1"
K3 = "moonshotai--Kimi-K3"


def _raw(config_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((config_dir / f"{name}_config.json").read_text())


def _load(config_dir: Path, name: str) -> ModelArch:
    return parse_hf_config(_raw(config_dir, name), None, name)


def _close(value: float, expected: float, rel: float) -> None:
    assert abs(value - expected) <= rel * expected, f"{value / B:.3f}B vs {expected / B:.3f}B"


# ---------------------------------------------------------------- Nemotron Super 49B


def _nas_hand_total(cfg: dict[str, Any]) -> tuple[int, int]:
    """Exact parameters and KV elements/token, straight from block_configs."""
    h, heads, vocab = cfg["hidden_size"], cfg["num_attention_heads"], cfg["vocab_size"]
    d = h // heads
    total = 2 * vocab * h + h  # embeddings + untied lm_head + final norm
    kv = 0
    for b in cfg["block_configs"]:
        a, f = b["attention"], b["ffn"]
        if not a["no_op"]:
            kv_heads = heads // a["n_heads_in_group"]
            total += h * heads * d * 2 + 2 * h * kv_heads * d + h  # q, o, k, v, input norm
            kv += 2 * kv_heads * d
        if not f["no_op"]:
            width = math.ceil(int(2 * f["ffn_mult"] * h / 3) / 256) * 256
            total += 3 * h * width + h  # gate/up/down + post-attention norm
    return total, kv


def test_nemotron_super_matches_model_card(config_dir: Path) -> None:
    # HF model page (safetensors): "49.9B params"; NeMo AutoModel coverage page: 49B, dense.
    c = param_counts(_load(config_dir, NAS))
    _close(c.total, 49.9 * B, 0.02)
    _close(c.active, 49.9 * B, 0.02)
    assert c.active == c.total


def test_nemotron_super_hand_count_and_kv(config_dir: Path) -> None:
    cfg = _raw(config_dir, NAS)
    arch = _load(config_dir, NAS)
    total, kv = _nas_hand_total(cfg)
    # 49 attention layers x (2 x 8 KV heads x 128) = 100,352; 31 attention blocks are no-ops.
    assert kv == 100_352
    assert kv_elements_per_token(arch) == kv
    assert arch.count_mixers("full_attention") == 49 and arch.count_mixers("none") == 31
    assert arch.attention is not None and arch.attention.num_kv_heads == 8
    # FFN widths 2816..28672 sum to 1,642,496 over 80 layers -> uniform 20531 (mean 20531.2):
    # 3 x 8192 x 0.2 x 80 = 393,216 parameters short of the exact 49,867,145,216.
    assert total == 49_867_145_216
    assert arch.dense_mlp is not None and arch.dense_mlp.intermediate_size == 20_531
    assert param_counts(arch).total - total == -393_216


def test_nemotron_super_profile_and_notes(config_dir: Path) -> None:
    arch = _load(config_dir, NAS)
    p = build_profile(arch)
    assert p.attn_layers == 49 and p.layers == 80
    assert [g.spec.num_kv_heads for g in p.attn] == [8]
    assert p.prefill_attn_flops(1e3, 0.0) > 0
    for name in ("p_attn", "p_dense", "p_lm_head"):
        value = getattr(p, name)
        assert value > 0 and math.isfinite(value), name
    assert [g.kv_elems for g in p.attn] == [2048]
    text = " ".join(arch.notes)
    assert "31 of 80 attention blocks skipped" in text
    assert "uniform 20531" in text and "-393,216" in text


def _tiny_nas(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "architectures": ["DeciLMForCausalLM"],
        "model_type": "nemotron-nas",
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_hidden_layers": len(blocks),
        "vocab_size": 100,
        "max_position_embeddings": 1024,
        "block_configs": blocks,
    }


def _blk(attn: dict[str, Any], ffn: dict[str, Any]) -> dict[str, Any]:
    return {"attention": attn, "ffn": ffn}


def test_nas_linear_blocks_and_varying_kv_heads_keep_total() -> None:
    cfg = _tiny_nas(
        [
            _blk({"n_heads_in_group": 2}, {"ffn_mult": 1.0}),  # kv 2, width int(42.7)->256
            _blk({"no_op": True}, {"no_op": True}),
            _blk({"replace_with_linear": True}, {"replace_with_linear": True}),
            _blk({"n_heads_in_group": 4}, {"ffn_mult": 2.0}),  # kv 1, width int(85.3)->256
        ]
    )
    arch = parse_hf_config(cfg, None, "tiny-nas")
    # Hand count: embeddings 2x6,400; attention 12,288 (kv 2) + 10,240 (kv 1); linear
    # attention 4,096 + its norm 64; FFN 2 x 3x64x256 = 98,304; linear FFN 4,096;
    # norms 6 x 64 + final 64 -> 142,272 (the linear attention's norm counted once).
    real = 12_800 + 22_528 + 4_096 + 98_304 + 4_096 + 7 * 64
    assert real == 142_272
    c = param_counts(arch)
    assert arch.layer_mixers == ("full_attention", "none", "none", "full_attention")
    assert arch.layer_ffns == ("dense", "none", "dense", "dense")
    # KV heads 2 and 1 -> mean 1.5, tie broken upwards to 2 (KV 128 vs 96 elements/token)
    assert arch.attention is not None and arch.attention.num_kv_heads == 2
    assert kv_elements_per_token(arch) == 128
    # uniform width 181 over 3 dense layers: pool 104,512 -> 104,256, i.e. -256
    assert arch.dense_mlp is not None and arch.dense_mlp.intermediate_size == 181
    assert c.total - real == -256
    text = " ".join(arch.notes)
    assert "replace_with_linear: 1 attention + 1 FFN" in text and "+33.33%" in text


def test_nas_refuses_sink_attention_and_wrong_block_count() -> None:
    with pytest.raises(UnsupportedModelError, match="sink"):
        parse_hf_config(
            _tiny_nas([_blk({"n_heads_in_group": 2, "num_sink_tokens": 4}, {"ffn_mult": 1.0})])
        )
    cfg = _tiny_nas([_blk({"n_heads_in_group": 2}, {"ffn_mult": 1.0})])
    cfg["num_hidden_layers"] = 2
    with pytest.raises(UnsupportedModelError, match="block_configs has 1"):
        parse_hf_config(cfg)


# ---------------------------------------------------------------- Kimi K3 (kimi_linear)


def _k3_hand(t: dict[str, Any]) -> dict[str, int]:
    """The real K3 text model, counted from config fields (shapes as in vLLM / llama.cpp)."""
    h, vocab = t["hidden_size"], t["vocab_size"]
    la = t["linear_attn_config"]
    heads_l, d, k = la["num_heads"], la["head_dim"], la["short_conv_kernel_size"]
    p = heads_l * d  # 12,288
    # q/k/v, f_a/f_b decay gate, b_proj (beta per head), full-rank output gate, o_proj,
    # three depthwise convs, A_log, dt_bias, o_norm
    kda = 3 * h * p + h * d + d * p + h * heads_l + h * p + p * h + 3 * p * k
    kda += heads_l + p + d
    heads, nope, rope, v = 96, t["qk_nope_head_dim"], t["qk_rope_head_dim"], t["v_head_dim"]
    ql, kvl = t["q_lora_rank"], t["kv_lora_rank"]
    mla = h * ql + ql + ql * heads * (nope + rope)  # q_a, q_a_norm, q_b
    mla += h * (kvl + rope) + kvl + kvl * heads * (nope + v)  # kv_a, kv_a_norm, kv_b
    mla += heads * v * h + h * heads * v  # o_proj + sigmoid output gate
    lat, inter, experts = t["routed_expert_hidden_size"], t["moe_intermediate_size"], 896
    expert = 3 * lat * inter
    moe_shared = 3 * h * inter * t["num_shared_experts"] + h * experts + experts  # + router
    moe_shared += 2 * h * lat + lat  # latent down/up projections + latent norm
    n_kda, n_mla, n_moe = len(la["kda_layers"]), len(la["full_attn_layers"]), 92
    dense = 3 * h * t["intermediate_size"]
    # per layer: 2 RMSNorms + AttnRes (res_norm, res_proj) x 2 sites; final norm + output
    # AttnRes pair
    norms = 93 * 6 * h + 3 * h
    shared = 2 * vocab * h + n_kda * kda + n_mla * mla + dense + n_moe * moe_shared + norms
    return {
        "kda": kda,
        "mla": mla,
        "total": shared + n_moe * experts * expert,
        "active": shared + n_moe * 16 * expert,
    }


def test_kimi_k3_matches_published_counts(config_dir: Path) -> None:
    # Kimi K3: HF model page 2.8T (incl. the 0.4B vision tower); "2.78T total, ~104B active
    # per token" (FareedKhan-dev/kimi-k3-in-c docs/ARCHITECTURE.md, from the tech report;
    # JustVugg/colibri docs/kimi_k3.md: "2.8T parameters, 104B active").
    c = param_counts(_load(config_dir, K3))
    _close(c.total, 2.78e12, 0.02)
    _close(c.active, 104 * B, 0.02)


def test_kimi_k3_hand_count_kv_and_state(config_dir: Path) -> None:
    text = _raw(config_dir, K3)["text_config"]
    hand = _k3_hand(text)
    arch = _load(config_dir, K3)
    c = param_counts(arch)
    assert arch.count_mixers("linear_attention") == 69
    assert arch.count_mixers("full_attention") == 24
    assert arch.layer_mixers[3] == "full_attention" and arch.layer_mixers[-2:] == (
        "full_attention",
        "full_attention",
    )
    assert arch.layer_ffns[0] == "dense" and arch.count_ffns("moe") == 92
    # Documented differences: KDA's f_a/f_b, per-head beta and dt_bias vs gated DeltaNet
    # (+1,814,432 per KDA layer); q_lora_rank rounding of the folded MLA gate (-12,657 per
    # MLA layer); latent norms (3,584 x 92) and the final AttnRes pair (2 x 7168).
    kda_gap = 7168 * 128 + 128 * 12_288 - 7168 * 96 + 12_288 - 96
    assert kda_gap == 1_814_432
    assert hand["kda"] - c.linear_attention // 69 == kda_gap
    assert hand["mla"] - c.attention // 24 == -12_657
    explained = 69 * kda_gap - 24 * 12_657 + 92 * 3584 + 2 * 7168
    assert hand["total"] - c.total == explained
    assert hand["active"] - c.active == explained
    assert abs(explained) / hand["total"] < 1e-4
    # MLA latent cache only: 24 layers x (kv_lora 512 + rope 64)
    assert kv_elements_per_token(arch) == 24 * 576 == 13_824
    # KDA state per layer: fp32 96 x 128 x 128, bf16 conv (4-1) x 3 x 12,288
    per_layer = 96 * 128 * 128 * 4 + 3 * 3 * 12_288 * 2
    assert kv_state_bytes_per_sequence(arch) == 69 * per_layer


def test_kimi_k3_profile_and_notes(config_dir: Path) -> None:
    arch = _load(config_dir, K3)
    p = build_profile(arch)
    assert (
        all(g.spec.kind == "mla" for g in p.attn)
        and p.attn_layers == 24
        and p.moe_layers == 92
        and p.top_k == 16
    )
    for name in (
        "p_attn",
        "p_recurrent",
        "p_dense",
        "p_shared",
        "p_router",
        "p_routed_total",
        "p_expert",
        "recurrent_flops_per_token",
        "state_bytes_per_seq",
    ):
        value = getattr(p, name)
        assert value > 0 and math.isfinite(value), name
    assert p.p_expert == 3 * 3584 * 3072
    assert p.prefill_attn_flops(1e3, 0.0) > 0 and p.decode_attn_flops(1e3) > 0
    text = " ".join(arch.notes)
    assert "q_lora_rank 1536 -> 4977" in text
    assert "+1,814,432/layer" in text and "+125.2M" in text
    assert "latent MoE" in text and "AttnRes" in text


def test_kimi_k3_kda_weights_are_bf16(config_dir: Path) -> None:
    # KDA projections live under self_attn.*, which the checkpoint leaves unquantised
    assert _load(config_dir, K3).precision.recurrent == "bf16"


def test_kimi_linear_small_without_gate_or_q_lora() -> None:
    # Kimi-Linear-48B shape in miniature: low-rank output gate, no q_lora, no AttnRes.
    cfg = {
        "architectures": ["KimiLinearForCausalLM"],
        "model_type": "kimi_linear",
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "vocab_size": 100,
        "max_position_embeddings": 4096,
        "num_attention_heads": 2,
        "qk_nope_head_dim": 16,
        "qk_rope_head_dim": 8,
        "v_head_dim": 16,
        "kv_lora_rank": 32,
        "q_lora_rank": None,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "num_experts": 4,
        "num_experts_per_token": 2,
        "num_shared_experts": 1,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "linear_attn_config": {
            "kda_layers": [1, 2, 3],
            "full_attn_layers": [4],
            "num_heads": 2,
            "head_dim": 16,
            "short_conv_kernel_size": 4,
        },
    }
    arch = parse_hf_config(cfg, None, "tiny-kimi-linear")
    c = param_counts(arch)
    # real KDA layer (h=64, d=16, H=2, P=32), low-rank g_a/g_b gate:
    # 3hP 6,144 + f_a/f_b 1,024+512 + b 128 + g_a/g_b 1,024+512 + o 2,048 + conv 384 + 2+32+16
    real_kda = 6_144 + 1_024 + 512 + 128 + 1_024 + 512 + 2_048 + 384 + 2 + 32 + 16
    assert c.linear_attention // 3 == real_kda - (1_024 + 512 - 128 + 32 - 2 + 1_024 + 512 - 2_048)
    assert arch.layer_mixers == ("linear_attention",) * 3 + ("full_attention",)
    assert arch.attention is not None and arch.attention.q_lora_rank is None
    assert kv_elements_per_token(arch) == 32 + 8
    assert arch.norms_per_layer == 2 and arch.moe is not None and arch.moe.latent_size is None
    assert "+926/layer" in " ".join(arch.notes)


def test_kimi_linear_refuses_inconsistent_layer_lists() -> None:
    cfg = {
        "architectures": ["KimiLinearForCausalLM"],
        "model_type": "kimi_linear",
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "vocab_size": 100,
        "max_position_embeddings": 4096,
        "linear_attn_config": {"kda_layers": [1, 2], "full_attn_layers": [2, 4]},
    }
    with pytest.raises(UnsupportedModelError, match="do not split"):
        parse_hf_config(cfg)
