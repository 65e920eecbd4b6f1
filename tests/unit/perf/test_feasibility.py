"""What a deployment can hold: recurrent state, a sequence that cannot fit even alone,
layouts an estimate must not widen, pools of one system, and parallelism that cannot be."""

from __future__ import annotations

import pytest

from codesign.errors import SpecError
from codesign.models.derived import kv_bytes_per_token, kv_state_bytes_per_sequence
from codesign.models.registry import load_model
from codesign.perf.estimate import EstimateRequest, estimate


def _e(**kw: object) -> dict:
    return estimate(EstimateRequest(**kw))  # type: ignore[arg-type]


def test_a_hybrid_models_recurrent_state_takes_cache_room(shared_dir) -> None:
    """Nemotron-H-56B keeps 459.6 MB of Mamba state per sequence (54 Mamba layers x 256
    heads x 64 x 256 states x 2 bytes = 453 MB, plus the convolution state) beside 41 KB
    of KV per token. On two H100s (vLLM, 1K/256: a sequence holds 1024 + 128 tokens on
    average) a rank's 1.01M tokens of cache room (vLLM's 90 % of 85.5 GB less 56.3 GB of
    weights, per GPU) hold ~81 sequences with their state, not the 875 the KV alone
    allows."""
    arch = load_model("nvidia/Nemotron-H-56B-Base-8K")
    state, per_token = kv_state_bytes_per_sequence(arch), kv_bytes_per_token(arch)
    assert state == pytest.approx(459.6e6, rel=1e-3)
    r = _e(model=arch.id, system="h100_sxm", tp=2, engine="vllm", batch=256, isl=1024, osl=256)
    held = 1024 + 256 / 2 + (state / 2) / (per_token / 2)  # both split over tp = 2
    assert r["kv_slots_per_rank"] == pytest.approx(r["kv_tokens_per_worker"] // held, abs=1)
    assert 76 <= r["kv_slots_per_rank"] <= 86 and r["decode_batch_per_rank"] <= 81.0 + 1e-6
    # a model without recurrent layers is unchanged: KV alone
    dense = _e(model="Qwen/Qwen3-32B", system="h100_sxm", tp=2, engine="vllm", isl=1024, osl=256)
    assert dense["kv_slots_per_rank"] == dense["kv_tokens_per_worker"] // (1024 + 128)


def test_a_request_that_cannot_fit_alone_does_not_fit() -> None:
    # Qwen3-32B on one H100: ~54K tokens of cache room; a 128K-token prompt cannot be held
    r = _e(model="Qwen/Qwen3-32B", system="h100_sxm", tp=1, batch=1, isl=131072, osl=256)
    assert r["kv_tokens_per_worker"] < 131072 and not r["fits"]
    ok = _e(model="Qwen/Qwen3-32B", system="h100_sxm", tp=1, batch=1, isl=32768, osl=256)
    assert ok["fits"]


def test_an_estimate_says_a_disagg_layout_does_not_fit_instead_of_widening_it() -> None:
    # DeepSeek-R1 in FP8 (~700 GB) cannot sit on 8 H100s (640 GB): measured rows with such
    # a layout are predicted as the wider worker that must have run; an estimate says no
    r = _e(model="deepseek-ai/DeepSeek-R1", system="h100_sxm", mode="disagg", tp=8, batch=8)
    assert not r["fits"]
    ok = _e(model="deepseek-ai/DeepSeek-R1", system="h200_sxm", mode="disagg", tp=8, batch=8)
    assert ok["fits"]
    # a prefill worker that cannot hold its prompt: Qwen3-32B at 128K on one H100
    long = _e(
        model="Qwen/Qwen3-32B",
        system="h100_sxm",
        mode="disagg",
        decode_system="b200_sxm",
        tp=1,
        batch=1,
        isl=131072,
        osl=256,
    )
    assert not long["fits"]


def test_naming_the_same_system_for_decode_changes_nothing() -> None:
    base = dict(model="meta-llama/Llama-3.1-70B", system="gb200", mode="disagg", tp=4, batch=8)
    a = _e(**base, isl=8192, osl=512)
    b = _e(**base, decode_system="gb200", isl=8192, osl=512)
    assert b["ttft_ms"] == a["ttft_ms"] and b["tpot_ms"] == a["tpot_ms"]


def test_open_loop_disagg_fits_against_the_real_kv_slots() -> None:
    r = _e(
        model="Qwen/Qwen3-32B",
        system="h100_sxm",
        mode="disagg",
        tp=1,
        batch=1,
        isl=32768,
        osl=2048,
        arrival_rate=0.02,
        prefill_workers=4,
    )
    assert r["kv_slots_per_rank"] == 1.0 and r["decode_batch_per_rank"] > 1.0
    assert not r["fits"]


def test_impossible_parallelism_and_unmodelled_afd_flags_are_refused() -> None:
    with pytest.raises(SpecError, match=r"ep=16 must divide tp x dp = 8"):
        _e(model="openai/gpt-oss-120b", system="b200_sxm", tp=8, ep=16)
    _e(model="openai/gpt-oss-120b", system="b200_sxm", tp=8, ep=4)  # experts 4 x moe_tp 2
    with pytest.raises(SpecError, match="--spec not modelled for afd"):
        _e(
            model="deepseek-ai/DeepSeek-R1",
            system="h200_sxm",
            mode="afd",
            tp=8,
            spec_method="mtp",
            draft_tokens=3,
            acceptance=0.7,
        )
    with pytest.raises(SpecError, match="--prefix-hit not modelled for afd"):
        _e(model="deepseek-ai/DeepSeek-R1", system="h200_sxm", mode="afd", tp=8, prefix_hit=0.5)


@pytest.mark.parametrize(
    ("model", "tied"), [("Qwen/Qwen3-0.6B", True), ("meta-llama/Llama-3.1-8B-Instruct", False)]
)
def test_weights_in_memory_are_the_parameter_count(model: str, tied: bool) -> None:
    """BF16 weights on one GPU are the checkpoint's parameters x 2 bytes: Qwen3-0.6B ties
    its embedding and lm_head (151,936 x 1,024, held once; 596M parameters in all), Llama
    holds both (8.03B). Norm weights are left out of the step model: within 0.1 %."""
    from codesign.models.params import param_counts

    arch = load_model(model)
    assert arch.tie_word_embeddings is tied
    r = _e(model=model, system="h100_sxm", tp=1, batch=1, isl=1024, osl=128)
    assert r["weights_gb_per_gpu"] * 1e9 == pytest.approx(2.0 * param_counts(arch).total, rel=1e-3)


def test_a_host_loaded_prefix_moves_only_the_growing_cache() -> None:
    """gpt-oss-120b alternates full and 128-token sliding-window layers (18 + 18 of 8 KV
    heads x 64): a 16,384-token prefix from host memory moves the full layers' 18 x 1,024
    elements a token, 604 MB in bf16, over the 63 GB/s PCIe link at the 55.6 GB/s a bulk
    copy reaches: 10.9 ms (the sliding layers were counted as full, twice the bytes)."""
    r = _e(
        model="openai/gpt-oss-120b",
        system="h100_sxm",
        tp=1,
        batch=1,
        isl=32768,
        osl=128,
        prefix_hit=0.5,
        host_share=1.0,
        breakdown=True,
    )
    want_ms = 16384 * 18 * 1024 * 2 / 55.6e9 * 1e3
    assert r["breakdown"]["prefill"]["kv_load"] == pytest.approx(want_ms, rel=1e-6)
