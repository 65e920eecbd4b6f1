"""Gemma 4 and MiMo-V2-Flash parsers: published counts, hand counts, KV cache, profile."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

import codesign.models.hf_family_table
from codesign.models import ModelArch, param_counts
from codesign.models.derived import kv_elements, kv_elements_per_token
from codesign.models.hf_config import parse_hf_config, text_part
from codesign.models.hf_fam_gemma_mimo import (
    RealLayer,
    fit_uniform_attention,
    parse_gemma4,
    parse_mimo_v2_flash,
)
from codesign.perf.profile import build_profile

B = 1e9
CTX = 131072  # "long context" of the fit: 128K tokens

GEMMA_MOE = "google--gemma-4-26B-A4B"
GEMMA_MOE_FP4 = "nvidia--Gemma-4-26B-A4B-NVFP4"
GEMMA_DENSE_FP4 = "nvidia--Gemma-4-31B-IT-NVFP4"
MIMO = "XiaomiMiMo--MiMo-V2-Flash"


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    table = codesign.models.hf_family_table.FAMILY_PARSERS
    monkeypatch.setitem(table, "gemma4", parse_gemma4)
    monkeypatch.setitem(table, "gemma4_text", parse_gemma4)
    monkeypatch.setitem(table, "mimo_v2_flash", parse_mimo_v2_flash)


def _raw(config_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((config_dir / f"{name}_config.json").read_text())


def _load(config_dir: Path, name: str, raw: dict[str, Any] | None = None) -> ModelArch:
    quant = config_dir / f"{name}_hf_quant_config.json"
    hf_quant = json.loads(quant.read_text()) if quant.exists() else None
    return parse_hf_config(raw or _raw(config_dir, name), hf_quant, name)


# --- independent hand counts from the config fields (the real, non-uniform layers) ---------


def _gemma_real(t: dict[str, Any]) -> tuple[int, int, int]:
    """(total params, active params, KV elements of a CTX-token sequence) of Gemma 4 text."""
    h, n, heads = t["hidden_size"], t["num_hidden_layers"], t["num_attention_heads"]
    shared_from = n - t.get("num_kv_shared_layers", 0)
    attn = kv = 0
    for i, kind in enumerate(t["layer_types"]):
        full = kind == "full_attention"
        d = t["global_head_dim"] if full else t["head_dim"]
        kvh = t["num_global_key_value_heads"] if full else t["num_key_value_heads"]
        attn += 2 * h * heads * d + d  # q_proj + o_proj + q_norm
        if i < shared_from:
            k_eq_v = full and t["attention_k_eq_v"]
            attn += h * kvh * d * (1 if k_eq_v else 2) + d  # k(/v)_proj + k_norm
            kv += 2 * kvh * d * (CTX if full else min(CTX, t["sliding_window"]))  # K and V
    inter = t["intermediate_size"]
    mlp = n * 3 * h * inter
    norms = n * 4 * h + h
    emb = t["vocab_size"] * h  # tied with the LM head
    experts = active_experts = 0
    if t.get("enable_moe_block"):
        e, k, mi = t["num_experts"], t["top_k_experts"], t["moe_intermediate_size"]
        experts, active_experts = n * e * 3 * h * mi, n * k * 3 * h * mi
        norms += n * 3 * h  # post_ff_1, post_ff_2, pre_ff_2
        mlp += n * (h * e + h + e)  # router proj, scale, per-expert scale
    total = emb + attn + mlp + norms + experts
    return total, total - experts + active_experts, kv


def _mimo_real(c: dict[str, Any]) -> tuple[int, int, int]:
    h, n = c["hidden_size"], c["num_hidden_layers"]
    attn = kv = 0
    for swa in c["hybrid_layer_pattern"]:
        p = "swa_" if swa else ""
        heads, kvh = c[f"{p}num_attention_heads"], c[f"{p}num_key_value_heads"]
        d, dv = c[f"{p}head_dim"], c[f"{p}v_head_dim"]
        attn += h * (heads * d + kvh * (d + dv) + heads * dv) + (heads if swa else 0)
        kv += kvh * (d + dv) * (min(CTX, c["sliding_window"]) if swa else CTX)
    e, k, mi = c["n_routed_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"]
    n_moe = sum(c["moe_layer_freq"])
    experts, active = n_moe * e * 3 * h * mi, n_moe * k * 3 * h * mi
    rest = 2 * c["vocab_size"] * h + (n - n_moe) * 3 * h * c["intermediate_size"]
    rest += n_moe * (h * e + e) + (2 * n + 1) * h  # router + score bias, norms
    total = attn + rest + experts
    return total, total - experts + active, kv


def _real(config_dir: Path, name: str) -> tuple[int, int, int]:
    raw = _raw(config_dir, name)
    return _mimo_real(raw) if name == MIMO else _gemma_real(text_part(raw)[0])


# --- (a) published figures -------------------------------------------------------------------

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


# --- (b) hand counts: params and KV elements at 128K -----------------------------------------


@pytest.mark.parametrize(
    ("name", "rel_params", "rel_active"),
    [(GEMMA_MOE, 5e-5, 1e-4), (GEMMA_DENSE_FP4, 5e-5, 5e-5), (MIMO, 1e-3, 0.015)],
)
def test_hand_counted_params(
    config_dir: Path, name: str, rel_params: float, rel_active: float
) -> None:
    total, active, _ = _real(config_dir, name)
    c = param_counts(_load(config_dir, name))
    # Gemma 26B-A4B: 25,233,141,760 by hand (attention 1,110,197,760; experts 22.84B).
    # MiMo-V2-Flash: 308,778,780,864 by hand; the uniform attention is 191M (0.06%) lower.
    assert c.total == pytest.approx(total, rel=rel_params)
    assert c.active == pytest.approx(active, rel=rel_active)


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
    ("name", "kv_real_128k", "per_token_real"),
    [
        # 5 full x 2 kv x (512 K + 512 V) x 131072 + 25 sliding x 8 x 512 x 1024
        (GEMMA_MOE, 5 * 2048 * CTX + 25 * 4096 * 1024, 5 * 2048),
        (GEMMA_DENSE_FP4, 10 * 4096 * CTX + 50 * 8192 * 1024, 10 * 4096),
        # 9 full x 4 kv x (192 K + 128 V) x 131072 + 39 sliding x 8 x 320 x 128
        (MIMO, 9 * 1280 * CTX + 39 * 2560 * 128, 9 * 1280),
    ],
)
def test_kv_elements_by_hand(
    config_dir: Path, name: str, kv_real_128k: int, per_token_real: int
) -> None:
    arch = _load(config_dir, name)
    assert _real(config_dir, name)[2] == kv_real_128k  # the two hand counts agree
    assert kv_elements(arch, CTX) == pytest.approx(kv_real_128k, rel=0.005)
    assert kv_elements_per_token(arch) == pytest.approx(per_token_real, rel=0.005)


def test_kv_sharing_and_per_layer_embeddings(config_dir: Path) -> None:
    """E2B/E4B-style options on the 26B config: the last 10 layers reuse earlier KV."""
    raw = _raw(config_dir, GEMMA_MOE)
    raw["text_config"].update(
        num_kv_shared_layers=10, hidden_size_per_layer_input=256, use_double_wide_mlp=True
    )
    arch = _load(config_dir, GEMMA_MOE, raw)
    t = raw["text_config"]
    # layers 0..19 own a cache: full at 5, 11, 17 -> 3 x 2048 per token + 17 sliding
    kv_real = 3 * 2048 * CTX + 17 * 4096 * 1024
    assert _gemma_real(t)[2] == kv_real
    # Sharing layers compute attention but cache nothing; the uniform labels cannot split
    # the two, so the fit trades: KV -3.4%, attention FLOPs +24% (both in the notes).
    assert kv_elements(arch, CTX) == pytest.approx(kv_real, rel=0.05)
    plain = _load(config_dir, GEMMA_MOE)
    assert kv_elements(arch, CTX) < 0.7 * kv_elements(plain, CTX)
    # mean of 20 x 2112 and 10 x 4224 (double wide), + 256 for the PLE GEMMs
    assert arch.moe is not None and arch.moe.shared_intermediate_size == 2816 + 256
    assert arch.norms_per_layer == 9
    text = " ".join(arch.notes)
    assert "reuse earlier layers' KV" in text and "per-layer embeddings" in text
    assert f"{262144 * 30 * 256:,}" in text  # the uncounted lookup table, named


# --- the fit itself --------------------------------------------------------------------------


def test_fit_reproduces_a_uniform_model_exactly() -> None:
    layers = [
        RealLayer(i % 4 == 3, 32, 8, 128, 128, None if i % 4 == 3 else 4096) for i in range(32)
    ]
    fit = fit_uniform_attention(4096, layers, base_total=6 * 10**9, base_active=6 * 10**9)
    a = fit.spec
    assert (a.num_heads, a.num_kv_heads, a.head_dim, a.v_head_dim) == (32, 8, 128, 128)
    assert (fit.n_full, a.sliding_window_tokens) == (8, 4096)
    assert fit.errors == (0, 0, 0, 0)


def test_fit_keeps_query_heads_and_gemma_shape(config_dir: Path) -> None:
    arch = _load(config_dir, GEMMA_MOE)
    a = arch.attention
    assert a is not None and a.num_heads == 16 and 16 % a.num_kv_heads == 0
    assert arch.count_mixers("full_attention") + arch.count_mixers("sliding_attention") == 30
    real_fulls = [
        i
        for i, t in enumerate(_raw(config_dir, GEMMA_MOE)["text_config"]["layer_types"])
        if t == "full_attention"
    ]
    assert all(arch.layer_mixers[i] == "full_attention" for i in real_fulls)


# --- (c) profile, (d) notes, precisions ----------------------------------------------------


@pytest.mark.parametrize("name", [GEMMA_MOE, GEMMA_MOE_FP4, GEMMA_DENSE_FP4, MIMO])
def test_profile_builds_with_positive_finite_fields(config_dir: Path, name: str) -> None:
    arch = _load(config_dir, name)
    prof = build_profile(arch)
    for fld in ("hidden", "vocab", "layers", "attn_layers", "p_attn", "p_lm_head", "num_heads"):
        v = getattr(prof, fld)
        assert v > 0 and math.isfinite(v), fld
    assert all(g.kv_elems > 0 for g in prof.attn) and prof.prefill_attn_flops(1e3, 0.0) > 0
    for f in fields(prof):
        v = getattr(prof, f.name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert math.isfinite(v) and v >= 0, f.name
    assert prof.attn_layers == arch.num_layers
    assert {g.cap or 0 for g in prof.attn} == {0, arch.attention.sliding_window_tokens}
    if arch.moe is not None:
        assert prof.p_expert > 0 and prof.top_k == 8


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (GEMMA_MOE, ("uniform shape", "KV at 131072", "K=V", "shared expert", "short")),
        (GEMMA_DENSE_FP4, ("uniform shape", "attention fit", "K=V")),
        (MIMO, ("uniform shape", "attention fit", "sinks on 39 of 48", "MTP")),
    ],
)
def test_notes_name_the_approximations(config_dir: Path, name: str, words: tuple[str, ...]) -> None:
    text = " ".join(_load(config_dir, name).notes)
    for w in words:
        assert w in text, w


def test_precisions_and_layout(config_dir: Path) -> None:
    dense = _load(config_dir, GEMMA_DENSE_FP4)
    assert dense.precision.attention == "bf16" and dense.precision.dense_mlp == "nvfp4"
    assert dense.precision.kv_cache == "fp8" and dense.moe is None
    mimo = _load(config_dir, MIMO)
    assert mimo.layer_ffns[0] == "dense" and mimo.count_ffns("moe") == 47
    assert mimo.count_mixers("full_attention") == 9  # the real full layers, same places
    assert mimo.precision.experts == "fp8_block"
    assert mimo.attention is not None and mimo.attention.attention_sinks
