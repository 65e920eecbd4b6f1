"""Parameter and KV-cache counts against published figures (shared/reference/model_facts.md)."""

from __future__ import annotations

import pytest

from codesign.models import (
    kv_bytes_per_token,
    kv_elements,
    kv_elements_per_token,
    load_model,
    param_counts,
)

B = 1e9


def _close(value: float, expected: float, rel: float) -> None:
    assert abs(value - expected) <= rel * expected, f"{value / B:.3f}B vs {expected / B:.3f}B"


# (id, total, active, rel tolerance); active counts the embedding table except where noted.
PUBLISHED = [
    # Llama 3.1 model card: 8B (8.03B), 70B (70.6B) dense.
    ("meta-llama/Meta-Llama-3.1-8B", 8.03 * B, 8.03 * B, 0.005),
    ("meta-llama/Meta-Llama-3.1-70B", 70.6 * B, 70.6 * B, 0.005),
    # DeepSeek-V3 README: 671B total, 37B activated (MTP module reported separately).
    ("deepseek-ai/DeepSeek-V3", 671 * B, 37 * B, 0.02),
    # Qwen3 README: 235B total / 22B activated; Qwen3-Coder README: 480B / 35B.
    ("Qwen/Qwen3-235B-A22B", 235 * B, 22 * B, 0.01),
    ("Qwen/Qwen3-Coder-480B-A35B-Instruct", 480 * B, 35 * B, 0.015),
    # Kimi K2 README: 1T (1.03T counted from the config) / 32B activated.
    ("moonshotai/Kimi-K2-Instruct", 1.03 * B * 1000, 32 * B, 0.03),
    # Mixtral: 46.7B total / 12.9B active.
    ("mistralai/Mixtral-8x7B-v0.1", 46.7 * B, 12.9 * B, 0.01),
]


@pytest.mark.usefixtures("config_dir")
@pytest.mark.parametrize(("model_id", "total", "active", "rel"), PUBLISHED)
def test_published_parameter_counts(model_id: str, total: float, active: float, rel: float) -> None:
    counts = param_counts(load_model(model_id))
    _close(counts.total, total, rel)
    _close(counts.active, active, rel)


@pytest.mark.usefixtures("config_dir")
def test_deepseek_v3_within_one_percent_and_mtp_separate() -> None:
    c = param_counts(load_model("deepseek-ai/DeepSeek-V3"))
    _close(c.total, 671 * B, 0.01)
    _close(c.active, 37 * B, 0.02)
    _close(c.active_gemm, 37 * B, 0.02)
    # HF's 685B = 671B + 14B MTP module, whose 14B includes its own copies of the
    # embedding and lm_head (0.93B each); without them the MTP layer is ~11.6B.
    assert 11 * B < c.mtp < 12 * B
    _close(c.total + c.mtp + c.embeddings + c.lm_head, 685 * B, 0.005)


@pytest.mark.usefixtures("config_dir")
def test_gpt_oss_120b_matches_model_card() -> None:
    # OpenAI model card: 116.83B total, 5.13B active; its active count leaves out the
    # embedding table (a lookup), which is our ``active_gemm``.
    c = param_counts(load_model("openai/gpt-oss-120b"))
    _close(c.total, 116.83 * B, 0.02)
    _close(c.active_gemm, 5.13 * B, 0.02)


@pytest.mark.usefixtures("config_dir")
@pytest.mark.parametrize(
    ("model_id", "elements"),
    [
        ("meta-llama/Meta-Llama-3.1-8B", 65_536),  # 2 x 8 x 128 x 32
        ("meta-llama/Meta-Llama-3.1-70B", 163_840),  # 2 x 8 x 128 x 80
        ("meta-llama/Meta-Llama-3.1-405B", 258_048),  # 2 x 8 x 128 x 126
        ("Qwen/Qwen3-235B-A22B", 96_256),  # 2 x 4 x 128 x 94
        ("Qwen/Qwen3-Coder-480B-A35B-Instruct", 126_976),  # 2 x 8 x 128 x 62
        ("mistralai/Mixtral-8x7B-v0.1", 65_536),
        ("deepseek-ai/DeepSeek-V3", 35_136),  # (512 + 64) x 61, MLA latent
        ("moonshotai/Kimi-K2-Instruct", 35_136),
    ],
)
def test_kv_elements_per_token(model_id: str, elements: int) -> None:
    assert kv_elements_per_token(load_model(model_id)) == elements


@pytest.mark.usefixtures("config_dir")
def test_deepseek_kv_bytes_bf16() -> None:
    # 35,136 elements x 2 bytes = 70,272 B = 68.6 KiB per token (model_facts.md).
    assert kv_bytes_per_token(load_model("deepseek-ai/DeepSeek-V3"), "bf16") == 70_272


@pytest.mark.usefixtures("config_dir")
def test_gpt_oss_sliding_half_caps_at_window() -> None:
    # model_facts: 36 layers x 2 x 8 x 64 = 36,864 elements per token while the context
    # is within the 128-token window; beyond it only the 18 full layers grow (18,432).
    arch = load_model("openai/gpt-oss-120b")
    assert arch.count_mixers("sliding_attention") == 18
    assert arch.attention.sliding_window_tokens == 128
    assert arch.attention.attention_sinks
    assert kv_elements_per_token(arch) == 18_432
    assert kv_elements(arch, 128) == 36_864 * 128
    assert kv_elements(arch, 10_000) == 18_432 * 10_000 + 18_432 * 128


@pytest.mark.usefixtures("config_dir")
def test_native_precisions_from_checkpoint_files() -> None:
    p = load_model("openai/gpt-oss-120b").precision
    assert (p.experts, p.attention, p.lm_head, p.embeddings) == ("mxfp4", "bf16", "bf16", "bf16")
    p = load_model("deepseek-ai/DeepSeek-R1").precision
    assert (p.experts, p.attention, p.dense_mlp) == ("fp8_block",) * 3
    p = load_model("nvidia/DeepSeek-V3.1-NVFP4").precision
    assert (p.experts, p.attention, p.kv_cache) == ("nvfp4", "bf16", "fp8")
    p = load_model("Qwen/Qwen3-235B-A22B-FP8").precision
    assert (p.experts, p.attention, p.lm_head) == ("fp8_block", "fp8_block", "bf16")
    p = load_model("moonshotai/Kimi-K2.5").precision
    assert (p.experts, p.attention, p.shared_experts) == ("int4_wo", "bf16", "bf16")
