"""DeepSeek-V4 (deepseek_v4 / deepseek_ref) as an equivalent ModelArch: counts vs published
figures and vs hand counts made here from the config fields (independent of the parser)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import codesign.models.hf_family_table
from codesign.models import ModelArch, kv_elements, param_counts, parse_hf_config
from codesign.models.hf_fam_deepseek_v4 import parse_deepseek_v4
from codesign.perf.profile import build_profile

B = 1e9
FLASH = "deepseek-ai--DeepSeek-V4-Flash"
PRO = "deepseek-ai--DeepSeek-V4-Pro"
ALL = [
    FLASH,
    PRO,
    "nvidia--DeepSeek-V4-Flash-NVFP4",
    "nvidia--DeepSeek-V4-Pro-NVFP4",
    "sgl-project--DeepSeek-V4-Flash-FP8",
    "sgl-project--DeepSeek-V4-Pro-FP8",
]


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    for family in ("deepseek_v4", "deepseek_ref"):
        monkeypatch.setitem(
            codesign.models.hf_family_table.FAMILY_PARSERS, family, parse_deepseek_v4
        )


def _raw(config_dir: Path, name: str) -> dict[str, Any]:
    path = config_dir / f"{name}_config.json"
    if not path.is_file():
        pytest.skip(f"{path.name} not in the shared configs")
    return json.loads(path.read_text())


def _load(config_dir: Path, name: str) -> ModelArch:
    quant = config_dir / f"{name}_hf_quant_config.json"
    hq = json.loads(quant.read_text()) if quant.is_file() else None
    return parse_hf_config(_raw(config_dir, name), hq, name)


def _hand_total(c: dict[str, Any]) -> int:
    """Parameters of the reference layout (inference/model.py), without MTP."""
    h, heads, d = c["hidden_size"], c["num_attention_heads"], c["head_dim"]
    ql, hc, vocab = c["q_lora_rank"], c["hc_mult"], c["vocab_size"]
    e, inter = c["n_routed_experts"], c["moe_intermediate_size"]
    ih, idim = c["index_n_heads"], c["index_head_dim"]
    layers = c["num_hidden_layers"]

    def compressor(ratio: int, dim: int) -> int:
        width = dim * (2 if ratio == 4 else 1)  # ratio 4 pools overlapping windows
        return ratio * width + 2 * h * width + dim

    total = 2 * vocab * h + h + hc * hc * h + hc + 1  # embed, head, norm, hc head
    for i in range(layers):
        ratio = c["compress_ratios"][i]
        attn = heads + h * ql + ql + ql * heads * d + h * d + d
        attn += heads * d * c["o_lora_rank"] + c["o_groups"] * c["o_lora_rank"] * h
        if ratio:
            attn += compressor(ratio, d)
        if ratio == 4:
            attn += ql * ih * idim + h * ih + compressor(4, idim)
        mix = (2 + hc) * hc
        block = 2 * h + 2 * (mix * hc * h + mix + 3)
        ffn = (e + 1) * 3 * h * inter + e * h
        ffn += vocab * c["num_experts_per_tok"] if i < c["num_hash_layers"] else e
        total += attn + block + ffn
    return total


def _hand_kv(c: dict[str, Any], ctx: int) -> int:
    """KV elements of one sequence: 128-token window of 512-dim entries in every layer, one
    entry per m tokens where compress ratio m > 0, plus 128-dim indexer keys where m = 4."""
    n = 0
    for ratio in c["compress_ratios"][: c["num_hidden_layers"]]:
        n += min(ctx, c["sliding_window"]) * c["head_dim"]
        if ratio:
            n += (ctx // ratio) * c["head_dim"]
        if ratio == 4:
            n += (ctx // ratio) * c["index_head_dim"]
    return n


# DeepSeek-V4 model cards / release (api-docs.deepseek.com news, 2026-04-24): V4-Flash 284B
# total / 13B activated, V4-Pro 1.6T total / 49B activated. As for gpt-oss, the activated
# figure leaves out the embedding lookup: our ``active_gemm`` (Flash 13.27B, Pro 48.85B).
@pytest.mark.parametrize(
    ("name", "total", "active"), [(FLASH, 284 * B, 13 * B), (PRO, 1.6e12, 49 * B)]
)
def test_published_parameter_counts(
    config_dir: Path, name: str, total: float, active: float
) -> None:
    c = param_counts(_load(config_dir, name))
    assert abs(c.total / total - 1) < 0.03, c.total / B
    assert abs(c.active_gemm / active - 1) < 0.03, c.active_gemm / B
    assert 0 < c.mtp < 0.03 * c.total  # one MTP layer, reported apart from total


@pytest.mark.parametrize("name", [FLASH, PRO])
def test_total_matches_hand_count(config_dir: Path, name: str) -> None:
    raw = _raw(config_dir, name)
    hand = _hand_total(raw)
    ours = param_counts(_load(config_dir, name)).total
    # left out on purpose: hc biases/scales, hc head, hash tables (< 0.01%)
    assert abs(ours / hand - 1) < 2e-5, (ours, hand)


@pytest.mark.parametrize("name", [FLASH, PRO])
@pytest.mark.parametrize("ctx", [131_072, 1_048_576])
def test_kv_elements_match_hand_count(config_dir: Path, name: str, ctx: int) -> None:
    raw = _raw(config_dir, name)
    ours = kv_elements(_load(config_dir, name), ctx)
    assert abs(ours / _hand_kv(raw, ctx) - 1) < 0.01, (ours, _hand_kv(raw, ctx))


def test_pro_kv_at_1m_matches_published(config_dir: Path) -> None:
    # Release notes: the 1M-token KV cache of V4-Pro is 9.62 GiB per sequence in bf16.
    assert _hand_kv(_raw(config_dir, PRO), 1_048_576) * 2 / 2**30 == pytest.approx(9.62, abs=0.01)
    ours = kv_elements(_load(config_dir, PRO), 1_048_576) * 2 / 2**30
    assert ours == pytest.approx(9.62, rel=0.01)


def test_layer_kinds_follow_compress_ratios(config_dir: Path) -> None:
    raw = _raw(config_dir, FLASH)
    arch = _load(config_dir, FLASH)
    ratios = raw["compress_ratios"][: raw["num_hidden_layers"]]
    assert arch.layer_mixers == tuple(
        "sliding_attention" if r == 0 else "full_attention" for r in ratios
    )
    assert arch.attention.sliding_window_tokens == raw["sliding_window"] == 128
    assert arch.attention.indexer is None  # top-k would cap every layer, HCA included
    assert arch.num_mtp_layers == raw["num_nextn_predict_layers"] == 1
    assert arch.layer_ffns == ("moe",) * raw["num_hidden_layers"]


@pytest.mark.parametrize("name", ALL)
def test_every_variant_loads_and_profiles(config_dir: Path, name: str) -> None:
    arch = _load(config_dir, name)
    assert ModelArch.model_validate_json(arch.model_dump_json()) == arch
    prof = build_profile(arch)
    for field in ("p_attn", "p_routed_total", "p_expert", "p_shared", "p_router", "p_lm_head"):
        value = getattr(prof, field)
        assert math.isfinite(value) and value > 0, field
    assert all(g.kv_elems > 0 for g in prof.attn) and prof.attn_layers == arch.num_layers
    assert prof.decode_attn_flops(1000.0) > 0 and prof.prefill_attn_flops(1000.0, 0.0) > 0
    assert all(g.spec.kind == "mla" for g in prof.attn) and prof.index_topk == 0
    assert prof.num_heads == _raw(config_dir, name)["num_attention_heads"]  # TP divisibility


def test_reference_configs_match_hf_configs(config_dir: Path) -> None:
    for size in ("Flash", "Pro"):
        ref = _load(config_dir, f"sgl-project--DeepSeek-V4-{size}-FP8")
        hf = _load(config_dir, f"deepseek-ai--DeepSeek-V4-{size}")
        assert ref.family == "deepseek_ref" and hf.family == "deepseek_v4"
        assert param_counts(ref) == param_counts(hf)
        assert kv_elements(ref, 131_072) == kv_elements(hf, 131_072)
        assert ref.precision.experts == "fp8_block"
        # the release checkpoints keep FP8 blocks but store routed experts in FP4 (MXFP4)
        assert hf.precision.experts == "mxfp4" and hf.precision.attention == "fp8_block"


@pytest.mark.parametrize("size", ["Flash", "Pro"])
def test_nvfp4_experts_precision(config_dir: Path, size: str) -> None:
    # quant.py probes V4's own module names (layers.N.ffn.experts...): the ModelOpt
    # per-module map gives the routed experts NVFP4, the rest stays unquantized.
    p = _load(config_dir, f"nvidia--DeepSeek-V4-{size}-NVFP4").precision
    assert p.experts == "nvfp4"
    assert p.shared_experts == "bf16" and p.attention == "bf16"


def test_notes_name_the_approximations(config_dir: Path) -> None:
    text = " | ".join(_load(config_dir, FLASH).notes)
    for word in ("compressed", "sliding", "top-512", "KV read", "prefill", "q_lora_rank"):
        assert word in text, word
    for word in ("hyper-connections", "hash-routed", "MTP", "FP4", "128K", "1M"):
        assert word in text, word
