"""Gemma 4 and MiMo-V2-Flash parsers: published counts, exact hand counts per layer kind
(params, KV cache, attention FLOPs), profile groups, notes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from codesign.models import ModelArch, kv_elements, kv_elements_per_token, param_counts
from codesign.models.derived import prefill_flops
from codesign.models.hf_config import parse_hf_config, text_part
from codesign.perf.profile import build_profile

B = 1e9
CTX = 131072
CONTEXTS = (1024, 4096, 16384, CTX)
PREFILL = 8192

GEMMA_MOE = "google--gemma-4-26B-A4B"
GEMMA_MOE_FP4 = "nvidia--Gemma-4-26B-A4B-NVFP4"
GEMMA_DENSE_FP4 = "nvidia--Gemma-4-31B-IT-NVFP4"
MIMO = "XiaomiMiMo--MiMo-V2-Flash"
ALL = (GEMMA_MOE, GEMMA_MOE_FP4, GEMMA_DENSE_FP4, MIMO)


def _raw(config_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((config_dir / f"{name}_config.json").read_text())


def _load(config_dir: Path, name: str, raw: dict[str, Any] | None = None) -> ModelArch:
    quant = config_dir / f"{name}_hf_quant_config.json"
    hf_quant = json.loads(quant.read_text()) if quant.exists() else None
    return parse_hf_config(raw or _raw(config_dir, name), hf_quant, name)


# --- independent hand counts, one real layer at a time, from the config fields -------------


@dataclass(frozen=True)
class Layer:
    heads: int
    kv_heads: int
    d: int  # q/k dim per head
    dv: int
    window: int | None  # None: full attention
    params: int  # attention params of this layer as served

    def cached(self, ctx: int) -> int:  # K and V of every kept token
        return self.kv_heads * (self.d + self.dv) * (min(ctx, self.window or ctx))

    def flops(self, tokens: int) -> int:  # causal prefill: QK^T + PV over attended keys
        pairs = sum(min(p, self.window or p) for p in range(1, tokens + 1))
        return 2 * self.heads * (self.d + self.dv) * pairs


@dataclass(frozen=True)
class Hand:
    layers: list[Layer]
    total: int  # as served (Gemma K=V: with the duplicated V slot)
    active: int
    checkpoint_total: int


def _gemma_hand(t: dict[str, Any]) -> Hand:
    h, n, heads = t["hidden_size"], t["num_hidden_layers"], t["num_attention_heads"]
    layers, dup = [], 0
    for kind in t["layer_types"]:
        full = kind == "full_attention"
        d = t["global_head_dim"] if full else t["head_dim"]
        kvh = t["num_global_key_value_heads"] if full else t["num_key_value_heads"]
        # q_proj + o_proj + k_proj + v_proj (served) + q_norm + k_norm
        p = 2 * h * heads * d + 2 * h * kvh * d + 2 * d
        if full and t["attention_k_eq_v"]:
            dup += h * kvh * d  # no v_proj in the checkpoint
        layers.append(Layer(heads, kvh, d, d, None if full else t["sliding_window"], p))
    mlp = n * 3 * h * t["intermediate_size"]
    norms = n * 4 * h + h
    experts = active_experts = 0
    if t.get("enable_moe_block"):
        e, k, mi = t["num_experts"], t["top_k_experts"], t["moe_intermediate_size"]
        experts, active_experts = n * e * 3 * h * mi, n * k * 3 * h * mi
        norms += n * 4 * h  # post_ff_1, post_ff_2, pre_ff_2, router h-scale
        mlp += n * (h * e + e)  # router proj, per-expert scale
    total = t["vocab_size"] * h + sum(x.params for x in layers) + mlp + norms + experts
    return Hand(layers, total, total - experts + active_experts, total - dup)


def _mimo_hand(c: dict[str, Any]) -> Hand:
    h, n = c["hidden_size"], c["num_hidden_layers"]
    layers = []
    for swa in c["hybrid_layer_pattern"]:
        p = "swa_" if swa else ""
        heads, kvh = c[f"{p}num_attention_heads"], c[f"{p}num_key_value_heads"]
        d, dv = c[f"{p}head_dim"], c[f"{p}v_head_dim"]
        sink = c["add_swa_attention_sink_bias" if swa else "add_full_attention_sink_bias"]
        params = h * (heads * d + kvh * (d + dv) + heads * dv) + (heads if sink else 0)
        layers.append(Layer(heads, kvh, d, dv, c["sliding_window"] if swa else None, params))
    e, k, mi = c["n_routed_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"]
    n_moe = sum(c["moe_layer_freq"])
    experts, active = n_moe * e * 3 * h * mi, n_moe * k * 3 * h * mi
    rest = 2 * c["vocab_size"] * h + (n - n_moe) * 3 * h * c["intermediate_size"]
    rest += n_moe * (h * e + e) + (2 * n + 1) * h  # router + score bias, norms
    total = sum(x.params for x in layers) + rest + experts
    return Hand(layers, total, total - experts + active, total)


def _hand(config_dir: Path, name: str) -> Hand:
    raw = _raw(config_dir, name)
    return _mimo_hand(raw) if name == MIMO else _gemma_hand(text_part(raw)[0])


# --- published figures -------------------------------------------------------------------------

# Gemma 4 model card (ai.google.dev/gemma/docs/core/model_card_4): 26B A4B = 25.2B total,
# 3.8B active; 31B = 30.7B (text; the ~550M vision encoder is not part of ModelArch).
# MiMo-V2-Flash technical report (arXiv 2601.02780) / model card: 309B total, 15B active.
PUBLISHED = [
    (GEMMA_MOE, 25.2 * B, 3.8 * B),
    (GEMMA_MOE_FP4, 25.2 * B, 3.8 * B),
    (GEMMA_DENSE_FP4, 30.7 * B, 30.7 * B),
    (MIMO, 309 * B, 15 * B),
]


@pytest.mark.parametrize(("name", "total", "active"), PUBLISHED)
def test_published_parameter_counts(
    config_dir: Path, name: str, total: float, active: float
) -> None:
    c = param_counts(_load(config_dir, name))
    assert c.total == pytest.approx(total, rel=0.03), f"{c.total / B:.3f}B"
    assert c.active == pytest.approx(active, rel=0.03), f"{c.active / B:.3f}B"
    # the checkpoint (no Gemma v_proj) is closer still: 25.233B / 30.697B / 308.78B
    assert _hand(config_dir, name).checkpoint_total == pytest.approx(total, rel=0.006)


# --- exact hand counts ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_params_equal_hand_count(config_dir: Path, name: str) -> None:
    hand = _hand(config_dir, name)
    c = param_counts(_load(config_dir, name))
    assert c.attention == sum(x.params for x in hand.layers)
    assert (c.total, c.active) == (hand.total, hand.active)


def test_hand_counts_pinned(config_dir: Path) -> None:
    """The hand counts themselves, as numbers (served; checkpoint for Gemma K=V)."""
    g = _hand(config_dir, GEMMA_MOE)
    assert (g.total, g.checkpoint_total) == (25_247_559_680, 25_233_141_760)
    assert sum(x.params for x in g.layers) == 1_124_615_680
    d = _hand(config_dir, GEMMA_DENSE_FP4)
    assert (d.total, d.checkpoint_total) == (30_807_445_760, 30_697_345_280)
    m = _hand(config_dir, MIMO)
    assert (m.total, m.active) == (308_778_780_864, 15_445_936_320)
    assert sum(x.params for x in m.layers) == 4_482_664_896


def test_non_attention_components_are_exact(config_dir: Path) -> None:
    g = param_counts(_load(config_dir, GEMMA_MOE))
    h = 2816
    assert g.routed_experts == 30 * 128 * 3 * h * 704
    assert g.active_routed_experts == 30 * 8 * 3 * h * 704
    assert g.shared_experts == 30 * 3 * h * 2112  # the dense MLP beside the experts
    assert g.router + g.norms == 30 * (h * 128 + 128) + 30 * 8 * h + h
    assert g.embeddings == 262144 * h and g.lm_head == 0  # tied
    m = param_counts(_load(config_dir, MIMO))
    assert m.routed_experts == 47 * 256 * 3 * 4096 * 2048
    assert m.dense_mlp == 3 * 4096 * 16384  # layer 0
    assert m.embeddings == m.lm_head == 152576 * 4096


@pytest.mark.parametrize(
    ("name", "per_token"),
    [
        (GEMMA_MOE, 5 * 2 * (512 + 512)),  # 5 global x 2 kv x (K + V)
        (GEMMA_DENSE_FP4, 10 * 4 * (512 + 512)),
        (MIMO, 9 * 4 * (192 + 128)),  # 9 full x 4 kv x (K 192 + V 128)
    ],
)
def test_kv_cache_equals_hand_count(config_dir: Path, name: str, per_token: int) -> None:
    arch, hand = _load(config_dir, name), _hand(config_dir, name)
    assert kv_elements_per_token(arch) == per_token
    assert sum(x.kv_heads * (x.d + x.dv) for x in hand.layers if x.window is None) == per_token
    for ctx in CONTEXTS:
        assert kv_elements(arch, ctx) == sum(x.cached(ctx) for x in hand.layers), ctx


def test_kv_cache_pinned(config_dir: Path) -> None:
    g = _load(config_dir, GEMMA_MOE)  # + 25 sliding x 8 kv x 512 x min(ctx, 1024)
    assert kv_elements(g, 1024) == 5 * 2048 * 1024 + 25 * 4096 * 1024
    assert kv_elements(g, CTX) == 5 * 2048 * CTX + 25 * 4096 * 1024
    m = _load(config_dir, MIMO)  # + 39 sliding x 8 kv x 320 x min(ctx, 128)
    assert kv_elements(m, 4096) == 9 * 1280 * 4096 + 39 * 2560 * 128


@pytest.mark.parametrize("name", [GEMMA_MOE, GEMMA_DENSE_FP4, MIMO])
def test_prefill_attention_flops_equal_hand_count(config_dir: Path, name: str) -> None:
    arch, hand = _load(config_dir, name), _hand(config_dir, name)
    attn = prefill_flops(arch, PREFILL) - 2 * param_counts(arch).active_gemm * PREFILL
    assert attn == sum(x.flops(PREFILL) for x in hand.layers)


def test_kv_sharing_and_per_layer_embeddings(config_dir: Path) -> None:
    """E2B/E4B-style options on the 26B config: the last 10 layers read earlier caches."""
    raw = _raw(config_dir, GEMMA_MOE)
    raw["text_config"].update(
        num_kv_shared_layers=10, hidden_size_per_layer_input=256, use_double_wide_mlp=True
    )
    arch, plain = _load(config_dir, GEMMA_MOE, raw), _load(config_dir, GEMMA_MOE)
    # sharing layers keep their kind's spec: same cache and FLOPs as without sharing
    assert arch.layer_attention == plain.layer_attention
    assert kv_elements(arch, CTX) == kv_elements(plain, CTX)
    # layers 0..19 own a cache (full at 5, 11, 17): stored 3 x 2048 x CTX + 17 x 4096 x 1024
    stored = 3 * 2048 * CTX + 17 * 4096 * 1024
    text = " ".join(arch.notes)
    assert "layers 20..29 read an earlier layer's cache" in text
    assert f"KV at 131072 tokens {kv_elements(arch, CTX) / stored - 1:+.1%}" in text
    # mean of 20 x 2112 and 10 x 4224 (double wide), + 256 for the PLE GEMMs
    assert arch.moe is not None and arch.moe.shared_intermediate_size == 2816 + 256
    assert arch.norms_per_layer == 9
    assert "per-layer embeddings" in text and "double-wide" in text
    assert f"{262144 * 30 * 256:,}" in text  # the uncounted lookup table, named


# --- layout, profile, notes, precisions ----------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_each_layer_has_its_real_shape(config_dir: Path, name: str) -> None:
    arch, hand = _load(config_dir, name), _hand(config_dir, name)
    for i, x in enumerate(hand.layers):
        a = arch.attention_of(i)
        assert a is not None
        assert (a.num_heads, a.num_kv_heads, a.head_dim, a.v_head_dim) == (
            x.heads,
            x.kv_heads,
            x.d,
            x.dv,
        )
        assert arch.layer_mixers[i] == (
            "full_attention" if x.window is None else "sliding_attention"
        )
        assert a.sliding_window_tokens == x.window and not a.kv_shared
    assert len(arch.extra_attention) == 1


@pytest.mark.parametrize("name", ALL)
def test_profile_has_one_group_per_shape(config_dir: Path, name: str) -> None:
    arch, hand = _load(config_dir, name), _hand(config_dir, name)
    prof = build_profile(arch)
    want = {}
    for x in hand.layers:
        key = (x.kv_heads * (x.d + x.dv), x.window)
        want[key] = want.get(key, 0) + 1
    assert {(g.kv_elems, g.cap): g.layers for g in prof.attn} == want
    assert len(prof.attn) == 2 and prof.attn_layers == arch.num_layers
    assert prof.p_attn == sum(x.params for x in hand.layers)
    for f in fields(prof):
        v = getattr(prof, f.name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert math.isfinite(v) and v >= 0, f.name
    assert prof.prefill_attn_flops(PREFILL, 0.0) == sum(x.flops(PREFILL) for x in hand.layers)
    if arch.moe is not None:
        assert prof.p_expert > 0 and prof.top_k == 8


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (GEMMA_MOE, ("(exact)", "5 full layers: 16 q / 2 kv heads x 512/512", "K=V", "14,417,920")),
        (GEMMA_DENSE_FP4, ("(exact)", "50 sliding layers", "kv_shared=False", "110,100,480")),
        (MIMO, ("(exact)", "39 sliding layers: 64 q / 8 kv heads x 192/128, window 128, sinks")),
    ],
)
def test_notes(config_dir: Path, name: str, words: tuple[str, ...]) -> None:
    arch = _load(config_dir, name)
    text = " ".join(arch.notes)
    for w in words:
        assert w in text, w
    for gone in ("uniform", "fit", "approximat", "modelled on all"):
        assert gone not in text.lower(), gone
    hand = _hand(config_dir, name)
    assert hand.total - hand.checkpoint_total == (
        int(words[-1].replace(",", "")) if name != MIMO else 0
    )


def test_precisions_and_layout(config_dir: Path) -> None:
    dense = _load(config_dir, GEMMA_DENSE_FP4)
    assert dense.precision.attention == "bf16" and dense.precision.dense_mlp == "nvfp4"
    assert dense.precision.kv_cache == "fp8" and dense.moe is None
    mimo = _load(config_dir, MIMO)
    assert mimo.layer_ffns[0] == "dense" and mimo.count_ffns("moe") == 47
    assert mimo.count_mixers("full_attention") == 9
    assert mimo.precision.experts == "fp8_block"
    full, swa = mimo.attention_of(0), mimo.attention_of(1)
    assert full is not None and swa is not None
    assert not full.attention_sinks and swa.attention_sinks
