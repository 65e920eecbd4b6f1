"""DeepSeek-V4 (deepseek_v4 / deepseek_ref): one exact attention spec per layer kind. Counts
vs published figures and vs hand counts made here from the config fields (independent of the
parser and of codesign.models.attn_layers)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesign.models import ModelArch, kv_elements, param_counts, parse_hf_config
from codesign.models.hf_config import Cfg
from codesign.models.hf_fam_deepseek_v4 import uncounted_params
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


def _hand_active(c: dict[str, Any]) -> int:
    """Total minus the routed experts a token does not use."""
    unused = c["n_routed_experts"] - c["num_experts_per_tok"]
    return (
        _hand_total(c)
        - c["num_hidden_layers"] * unused * 3 * c["hidden_size"] * c["moe_intermediate_size"]
    )


def _ratios(c: dict[str, Any]) -> list[int]:
    return c["compress_ratios"][: c["num_hidden_layers"]]


def _hand_kv(c: dict[str, Any], ctx: int) -> int:
    """KV elements of one sequence: a 128-token window of 512-dim entries in every layer, one
    entry per m tokens where compress ratio m > 0, plus a 128-dim indexer key per compressed
    entry where m = 4."""
    n = 0
    for ratio in _ratios(c):
        n += min(ctx, c["sliding_window"]) * c["head_dim"]
        if ratio:
            n += (ctx // ratio) * c["head_dim"]
        if ratio == 4:
            n += (ctx // ratio) * c["index_head_dim"]
    return n


def _hand_decode_read(c: dict[str, Any], ctx: int) -> int:
    """KV elements one decode token reads: window, top-k of the ctx/4 CSA entries and every
    CSA indexer key (scored), all ctx/128 HCA entries."""
    d, w, k = c["head_dim"], c["sliding_window"], c["index_topk"]
    n = 0
    for ratio in _ratios(c):
        n += min(ctx, w) * d
        if ratio == 4:
            n += min(ctx // 4, k) * d + (ctx // 4) * c["index_head_dim"]
        elif ratio:
            n += (ctx // ratio) * d
    return n


def _hand_prefill_flops(c: dict[str, Any], tokens: int, floor: bool = False) -> float:
    """Attention FLOPs of a ``tokens``-long prompt, query p (1-based) by query p: QK and PV
    over 512-dim entries (4 x heads x 512 per entry), the indexer 2 x heads x dim per scored
    compressed entry. ``floor``: p // m complete compressed entries (else p / m)."""
    p = np.arange(1, tokens + 1, dtype=np.float64)
    per_entry = 4 * c["num_attention_heads"] * c["head_dim"]
    per_key = 2 * c["index_n_heads"] * c["index_head_dim"]
    total = 0.0
    for ratio in _ratios(c):
        total += per_entry * np.minimum(p, c["sliding_window"]).sum()
        if ratio:
            comp = p // ratio if floor else p / ratio
            if ratio == 4:
                total += per_entry * np.minimum(comp, c["index_topk"]).sum()
                total += per_key * comp.sum()
            else:
                total += per_entry * comp.sum()
    return total


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
def test_params_match_hand_count(config_dir: Path, name: str) -> None:
    raw = _raw(config_dir, name)
    c = param_counts(_load(config_dir, name))
    left = uncounted_params(Cfg(raw, name))
    # exact: ours + the documented remainder = the reference layout, total and active
    assert c.total + left == _hand_total(raw)
    assert c.active + left == _hand_active(raw)
    n, h = raw["num_hidden_layers"], raw["hidden_size"]
    assert 0 <= left < n * h  # under one hidden vector per layer


@pytest.mark.parametrize("name", [FLASH, PRO])
def test_params_exact_with_grouped_output(config_dir: Path, name: str) -> None:
    raw = _raw(config_dir, name)
    c = param_counts(_load(config_dir, name))
    bound = raw["num_hidden_layers"] * raw["hidden_size"]  # < 1e-5 of active
    assert 0 <= _hand_total(raw) - c.total < bound
    assert 0 <= _hand_active(raw) - c.active < bound


@pytest.mark.parametrize("name", [FLASH, PRO])
@pytest.mark.parametrize("ctx", [1024, 131_072, 1_048_576])
def test_kv_elements_match_hand_count(config_dir: Path, name: str, ctx: int) -> None:
    raw = _raw(config_dir, name)
    ours = kv_elements(_load(config_dir, name), ctx)
    assert ours == _hand_kv(raw, ctx)


def test_pro_kv_at_1m_matches_published(config_dir: Path) -> None:
    # Release notes: the 1M-token KV cache of V4-Pro is 9.62 GiB per sequence in bf16.
    assert _hand_kv(_raw(config_dir, PRO), 1_048_576) * 2 / 2**30 == pytest.approx(9.62, abs=0.01)
    ours = kv_elements(_load(config_dir, PRO), 1_048_576) * 2 / 2**30
    assert ours == pytest.approx(9.62, abs=0.01)


@pytest.mark.parametrize("name", [FLASH, PRO])
def test_decode_kv_read_matches_hand_count(config_dir: Path, name: str) -> None:
    raw = _raw(config_dir, name)
    prof = build_profile(_load(config_dir, name))
    ours = prof.decode_kv_elems(np.array(131_072.0), np.array(1.0))
    assert ours == _hand_decode_read(raw, 131_072)


@pytest.mark.parametrize("name", [FLASH, PRO])
def test_prefill_attention_flops_match_hand_count(config_dir: Path, name: str) -> None:
    raw = _raw(config_dir, name)
    prof = build_profile(_load(config_dir, name))
    ours = float(prof.prefill_attn_flops(np.array(8192.0), np.array(0.0)))
    assert ours == pytest.approx(_hand_prefill_flops(raw, 8192), rel=1e-12)
    # whole compressed entries only: the continuous p / m differs by < 0.1% at 8K
    assert ours == pytest.approx(_hand_prefill_flops(raw, 8192, floor=True), rel=1e-3)


def test_layer_kinds_follow_compress_ratios(config_dir: Path) -> None:
    raw = _raw(config_dir, FLASH)
    arch = _load(config_dir, FLASH)
    ratios = _ratios(raw)
    assert arch.layer_mixers == tuple(
        "sliding_attention" if r == 0 else "full_attention" for r in ratios
    )
    for i, r in enumerate(ratios):
        a = arch.attention_of(i)
        assert a.kind == "gqa" and a.kv_shared and a.num_kv_heads == 1 and a.attention_sinks
        assert (a.num_heads, a.head_dim, a.v_head_dim) == (raw["num_attention_heads"], 512, 512)
        assert a.q_lora_rank == raw["q_lora_rank"] and a.sliding_window_tokens == 128
        assert a.kv_compress_ratio == (r or None)
        if r == 4:
            assert a.indexer is not None
            assert (a.indexer.num_heads, a.indexer.head_dim, a.indexer.topk_tokens) == (
                64,
                128,
                raw["index_topk"],
            )
        else:
            assert a.indexer is None
    assert arch.attention.kv_compress_ratio is None  # spec 0: window only (and MTP)
    assert arch.num_mtp_layers == raw["num_nextn_predict_layers"] == 1
    assert arch.layer_ffns == ("moe",) * raw["num_hidden_layers"]


@pytest.mark.parametrize("name", ALL)
def test_every_variant_loads_and_profiles(config_dir: Path, name: str) -> None:
    raw = _raw(config_dir, name)
    arch = _load(config_dir, name)
    assert ModelArch.model_validate_json(arch.model_dump_json()) == arch
    prof = build_profile(arch)
    for field in ("p_attn", "p_routed_total", "p_expert", "p_shared", "p_router", "p_lm_head"):
        value = getattr(prof, field)
        assert math.isfinite(value) and value > 0, field
    assert all(g.kv_elems > 0 for g in prof.attn) and prof.attn_layers == arch.num_layers
    assert prof.decode_attn_flops(1000.0) > 0 and prof.prefill_attn_flops(1000.0, 0.0) > 0
    assert all(g.spec.kind == "gqa" for g in prof.attn)
    assert prof.index_topk == raw["index_topk"]
    assert prof.num_heads == raw["num_attention_heads"]  # TP divisibility


def test_reference_configs_match_hf_configs(config_dir: Path) -> None:
    for size in ("Flash", "Pro"):
        ref = _load(config_dir, f"sgl-project--DeepSeek-V4-{size}-FP8")
        hf = _load(config_dir, f"deepseek-ai--DeepSeek-V4-{size}")
        assert ref.family == "deepseek_ref" and hf.family == "deepseek_v4"
        assert param_counts(ref) == param_counts(hf)
        assert (ref.attention, ref.extra_attention, ref.layer_attention) == (
            hf.attention,
            hf.extra_attention,
            hf.layer_attention,
        )
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
    for word in ("window-only", "CSA", "HCA", "top-512", "extra norms", "hash-routed", "MTP"):
        assert word in text, word
    assert "FP4" in text
    assert "counted as dense" not in text
