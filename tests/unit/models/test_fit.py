"""Memory fit: weights per chip, KV capacity left, and layout validation."""

from __future__ import annotations

import pytest

from codesign.errors import SpecError
from codesign.models import fit_report, load_model

TOTAL_BYTES = 86_848 * 2  # tiny Llama in bf16 (see test_derived_tiny)
KV_PER_TOKEN = 2 * 2 * 32 * 2  # 2 layers x 2 KV heads x (16 + 16) x bf16 = 256


@pytest.fixture
def tiny(write_config, tiny_llama):
    return load_model(write_config(tiny_llama()))


def test_just_fits_ten_tokens(tiny) -> None:
    r = fit_report(
        tiny, TOTAL_BYTES + 10 * KV_PER_TOKEN, chips=1, kv_precision="bf16", reserve_fraction=0.0
    )
    assert r.fits and r.weight_bytes_per_chip == TOTAL_BYTES
    assert r.kv_tokens_per_worker == 10 and r.kv_tokens_total == 10


def test_just_does_not_fit(tiny) -> None:
    r = fit_report(tiny, TOTAL_BYTES, chips=1, kv_precision="bf16", reserve_fraction=0.0)
    assert not r.fits and r.kv_tokens_per_worker == 0
    assert "weights need" in r.reason and "tp=1" in r.reason


def test_tp_halves_weights_and_kv(tiny) -> None:
    r = fit_report(tiny, 1e6, chips=4, tp=2, kv_precision="bf16", reserve_fraction=0.0)
    assert r.weight_bytes_per_chip == TOTAL_BYTES / 2
    assert r.kv_bytes_per_token_per_chip == KV_PER_TOKEN / 2
    assert r.workers == 2 and r.kv_tokens_total == 2 * r.kv_tokens_per_worker


def test_reserve_fraction(tiny) -> None:
    mem = (TOTAL_BYTES + 10 * KV_PER_TOKEN) / 0.5
    r = fit_report(tiny, mem, chips=1, kv_precision="bf16", reserve_fraction=0.5)
    assert r.kv_tokens_per_worker == 10


def test_tp_must_divide_heads(tiny) -> None:
    with pytest.raises(SpecError, match="tp=3 does not divide the 4 attention heads"):
        fit_report(tiny, 1e9, chips=3, tp=3)


def test_chips_multiple_of_tp_pp(tiny) -> None:
    with pytest.raises(SpecError, match="not a multiple of tp x pp"):
        fit_report(tiny, 1e9, chips=3, tp=2)


@pytest.mark.usefixtures("config_dir")
def test_ep_must_divide_experts() -> None:
    with pytest.raises(SpecError, match="ep=3 does not divide the 8 experts"):
        fit_report(load_model("mistralai/Mixtral-8x7B-v0.1"), 80e9, chips=3, ep=3)


@pytest.mark.usefixtures("config_dir")
def test_deepseek_r1_on_eight_80gb_chips_does_not_fit() -> None:
    # ~671B FP8 (+ bf16 embeddings) is ~84 GB per chip over 8 chips: not on 80 GB H100s,
    # but on 141 GB H200s with room for KV cache.
    arch = load_model("deepseek-ai/DeepSeek-R1")
    h100 = fit_report(arch, 80e9, chips=8, tp=8, ep=8)
    assert not h100.fits and "80.0 GB" in h100.reason
    h200 = fit_report(arch, 141e9, chips=8, tp=8, ep=8)
    assert h200.fits and h200.kv_tokens_per_worker > 500_000
    # MLA latent is replicated on every TP rank: 61 layers x 576 x 1 byte (fp8)
    assert h200.kv_bytes_per_token_per_chip == 61 * 576
