"""Checkpoints named after a stored model (quantised copies, tunes, dated revisions)
resolve to its architecture, with the precisions a format suffix gives
(``models.variants``)."""

from __future__ import annotations

import pytest

from codesign.errors import NotFoundError
from codesign.models import load_model
from codesign.models.variants import name_key


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("nvidia/Llama-3.3-70B-Instruct-FP8", ("llama-3.3-70b", "fp8")),
        ("deepseek-ai/DeepSeek-V3-FP8", ("deepseek-v3", "fp8")),  # keeps its "V3"
        ("deepseek-ai/DeepSeek-V3", ("deepseek-v3", None)),
        ("deepseek-ai/DeepSeek-V3-0324", ("deepseek-v3", None)),
        ("Qwen/Qwen3-32B-FP8-Static-PerTensor", ("qwen3-32b", "fp8")),
        ("org/Qwen2.5-72B-Instruct-GPTQ-Int4", ("qwen2.5-72b", "int4_wo")),
        ("nvidia/DeepSeek-R1-0528-FP4-v2", ("deepseek-r1", "nvfp4")),
        ("RedHatAI/Llama-3.1-8B-Instruct-FP8-dynamic", ("llama-3.1-8b", "fp8")),
        ("Qwen/Qwen3-235B-A22B-Thinking-2507", ("qwen3-235b-a22b", None)),
        ("org/gpt-oss-120b-mxfp4", ("gpt-oss-120b", "mxfp4")),
        ("nvidia/Nemotron-H-56B-Base-8K", ("nemotron-h-56b-base-8k", None)),
        ("FP8", ("fp8", None)),
    ],
)
def test_name_key(model_id: str, expected) -> None:
    assert name_key(model_id) == expected


def test_fp8_copy_of_a_bf16_model(shared_dir) -> None:
    base = load_model("meta-llama/Llama-3.1-405B-Instruct")
    arch = load_model("meta-llama/Llama-3.1-405B-Instruct-FP8")
    assert arch.id == "meta-llama/Llama-3.1-405B-Instruct-FP8"
    assert arch.model_copy(update={"id": base.id, "precision": base.precision}) == base.model_copy(
        update={"notes": arch.notes}
    )
    p = arch.precision
    assert (p.attention, p.dense_mlp) == ("fp8", "fp8")
    assert (p.embeddings, p.lm_head) == (base.precision.embeddings, base.precision.lm_head)
    assert arch.notes[-1].startswith("named after meta-llama/Llama-3.1-405B")


def test_fp4_copy_keeps_attention_and_a_base_in_the_same_family_keeps_its_own(shared_dir) -> None:
    p = load_model("some-org/Qwen3-235B-A22B-FP4").precision
    base = load_model("Qwen/Qwen3-235B-A22B").precision
    assert (p.experts, p.dense_mlp) == ("nvfp4", "nvfp4")
    assert p.attention == base.attention  # NVFP4 recipes leave attention as stored
    # the same name under NVIDIA's organisation is its stored NVFP4 checkpoint's recipe
    stored = load_model("nvidia/Qwen3-235B-A22B-NVFP4").precision
    assert load_model("nvidia/Qwen3-235B-A22B-FP4").precision.attention == stored.attention
    # DeepSeek-V3 is stored in block-scaled FP8: an "-FP8" copy is that checkpoint
    assert (
        load_model("deepseek-ai/DeepSeek-V3-FP8").precision
        == load_model("deepseek-ai/DeepSeek-V3").precision
    )


def test_no_stored_base_is_still_an_error(shared_dir) -> None:
    with pytest.raises(NotFoundError, match="unknown model"):
        load_model("some-org/Not-A-Stored-Model-FP8")


def test_tunes_and_revisions_keep_the_architecture(shared_dir) -> None:
    thinking = load_model("Qwen/Qwen3-235B-A22B-Thinking-2507")
    base = load_model("Qwen/Qwen3-235B-A22B")
    assert thinking.precision == base.precision
    assert thinking.model_copy(update={"id": base.id, "notes": base.notes}) == base
    # two stored tunes of one architecture (Instruct, Thinking) tie: either serves
    assert (
        load_model("Qwen/Qwen3-VL-32B").num_layers
        == load_model("Qwen/Qwen3-VL-32B-Instruct").num_layers
    )
    # a different size of a family is not a tune of it
    with pytest.raises(NotFoundError):
        load_model("zai-org/GLM-5-Air")
