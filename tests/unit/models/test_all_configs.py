"""Every stored config either loads or is refused with UnsupportedModelError, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesign.errors import UnsupportedModelError
from codesign.models import ModelArch, list_models, load_model, param_counts
from codesign.models.hf_config import parse_hf_config

MUST_LOAD = [
    "meta-llama/Meta-Llama-3.1-8B",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-235B-A22B-FP8",
    "Qwen/Qwen3.5-397B-A17B",
    "Qwen/Qwen3.5-27B",
    "openai/gpt-oss-120b",
    "deepseek-ai/DeepSeek-R1",
    "deepseek-ai/DeepSeek-V3.2",
    "nvidia/DeepSeek-V3.1-NVFP4",
    "moonshotai/Kimi-K2-Instruct",
    "moonshotai/Kimi-K2.5",
    "zai-org/GLM-5",
    "MiniMaxAI/MiniMax-M2.5",
    "mistralai/Mixtral-8x7B-v0.1",
]


def test_every_config_loads_or_is_refused(config_dir: Path) -> None:
    files = sorted(
        p for p in config_dir.glob("*_config.json") if not p.name.endswith("_hf_quant_config.json")
    )
    assert len(files) > 50
    loaded, refused = 0, 0
    for path in files:
        quant = path.with_name(path.name.replace("_config.json", "_hf_quant_config.json"))
        hq = json.loads(quant.read_text()) if quant.is_file() else None
        try:
            arch = parse_hf_config(json.loads(path.read_text()), hq, path.stem)
        except UnsupportedModelError as exc:
            msg = str(exc)
            # the message names the architecture (HF architectures[0])
            assert "For" in msg or ":" in msg, msg
            refused += 1
            continue
        counts = param_counts(arch)
        assert counts.total > counts.active > 0 or counts.total == counts.active > 0
        loaded += 1
    assert loaded >= 85 and refused == 0  # every stored config is described


@pytest.mark.usefixtures("config_dir")
@pytest.mark.parametrize("model_id", MUST_LOAD)
def test_required_families_load_and_round_trip(model_id: str) -> None:
    arch = load_model(model_id)
    again = ModelArch.model_validate_json(arch.model_dump_json())
    assert again == arch


def test_refusal_names_architecture_and_reason() -> None:
    # an unknown model_type is read by structure (hf_fam_generic); without the standard
    # fields it is refused, naming the architecture and the field it lacks
    config = {"architectures": ["FancyNewForCausalLM"], "model_type": "fancy_new"}
    with pytest.raises(UnsupportedModelError, match="FancyNewForCausalLM.*hidden_size"):
        parse_hf_config(config, None, "org/fancy")


@pytest.mark.usefixtures("config_dir")
def test_list_models_is_complete() -> None:
    rows = list_models()
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids))
    by_id = {r.id: r for r in rows}
    v3 = by_id["deepseek-ai/DeepSeek-V3"]
    assert v3.supported and v3.kv_bytes_per_token_bf16 == 70_272
    assert v3.max_context_tokens == 163_840
    assert all(r.supported for r in rows), [r.id for r in rows if not r.supported]
    assert by_id["nvidia/DeepSeek-R1-NVFP4"].alias_of == "deepseek-ai/DeepSeek-R1"
