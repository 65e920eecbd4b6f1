"""A config whose model_type has no parser is read by structure (``hf_fam_generic``):
parameter counts against the published ones, and the note that says so."""

from __future__ import annotations

import pytest

from codesign.models.hf_config import parse_hf_config
from codesign.models.params import param_counts

# GLM-4.5 (model_type glm4_moe, config.json on the Hugging Face hub): 92 layers, the first
# three dense, 160 routed + 1 shared expert, top-8. Model card: 355B total, 32B active.
GLM_4_5 = {
    "architectures": ["Glm4MoeForCausalLM"],
    "model_type": "glm4_moe",
    "hidden_size": 5120,
    "num_hidden_layers": 92,
    "num_attention_heads": 96,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 12288,
    "moe_intermediate_size": 1536,
    "n_routed_experts": 160,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "first_k_dense_replace": 3,
    "vocab_size": 151552,
    "max_position_embeddings": 131072,
    "use_qk_norm": True,
    "attention_bias": True,
    "num_nextn_predict_layers": 1,
}
# Qwen2-57B-A14B (model_type qwen2_moe): 64 experts top-8 and one gated shared expert
# of 20480. Model card: 57B total, 14B activated.
QWEN2_57B = {
    "architectures": ["Qwen2MoeForCausalLM"],
    "model_type": "qwen2_moe",
    "hidden_size": 3584,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "intermediate_size": 18944,
    "moe_intermediate_size": 2560,
    "shared_expert_intermediate_size": 20480,
    "num_experts": 64,
    "num_experts_per_tok": 8,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "vocab_size": 151936,
    "max_position_embeddings": 131072,
}


@pytest.mark.parametrize(
    ("config", "total_b", "active_b"), [(GLM_4_5, 355, 32), (QWEN2_57B, 57, 14)]
)
def test_unknown_moe_family_matches_its_published_counts(config, total_b, active_b) -> None:
    arch = parse_hf_config(config, model_id="x/y")
    p = param_counts(arch)
    assert p.total / 1e9 == pytest.approx(total_b, rel=0.02)
    assert p.active / 1e9 == pytest.approx(active_b, rel=0.06)
    assert arch.layer_ffns.count("moe") == config["num_hidden_layers"] - config.get(
        "first_k_dense_replace", 0
    )
    assert "has no parser of its own" in arch.notes[-1] and "routed experts" in arch.notes[-1]


def test_unknown_dense_family_with_sliding_layers() -> None:
    # a Llama-shaped config under a new model_type, every other layer windowed
    cfg = {
        "model_type": "brand_new",
        "architectures": ["BrandNewForCausalLM"],
        "hidden_size": 4096,
        "num_hidden_layers": 4,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "layer_types": ["sliding_attention", "full_attention"] * 2,
    }
    arch = parse_hf_config(cfg, model_id="x/y")
    assert arch.moe is None and arch.attention.sliding_window_tokens == 4096
    assert arch.layer_mixers == ("sliding_attention", "full_attention") * 2
    # per layer: q and o 4096 x 4096, k and v 4096 x 1024, MLP 3 x 4096 x 14336
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
    assert param_counts(arch).attention + param_counts(arch).dense_mlp == 4 * per_layer
    assert "dense GQA" in arch.notes[-1]


def test_a_config_without_the_standard_fields_is_still_refused() -> None:
    from codesign.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="hidden_size"):
        parse_hf_config({"model_type": "vision_only", "architectures": ["X"]}, model_id="x")
