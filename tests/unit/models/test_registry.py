"""Resolving ids, aliases, files and folders; errors for bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from codesign.errors import CodesignError, NotFoundError, UnsupportedModelError
from codesign.models import kv_elements_per_token, load_model, param_counts
from codesign.paths import shared_dir


@pytest.mark.usefixtures("config_dir")
def test_case_insensitive_id() -> None:
    assert load_model("DEEPSEEK-AI/deepseek-r1").id == "deepseek-ai/DeepSeek-R1"


@pytest.mark.usefixtures("config_dir")
@pytest.mark.parametrize(
    "spelling", ["deepseek-ai/DeepSeek-R1/", "deepseek-ai--DeepSeek-R1", "DeepSeek-R1"]
)
def test_other_spellings_of_one_id(spelling: str) -> None:
    assert load_model(spelling).id == "deepseek-ai/DeepSeek-R1"


@pytest.mark.usefixtures("config_dir")
def test_a_bare_name_resolves_aliases_too_and_refuses_unknown_ones() -> None:
    assert load_model("Llama-3.1-8B-Instruct").id == "meta-llama/Llama-3.1-8B-Instruct"
    with pytest.raises(NotFoundError, match="unknown model 'Llama-9-8B'"):
        load_model("Llama-9-8B")


@pytest.mark.usefixtures("config_dir")
def test_hf_quant_config_is_read_with_the_config() -> None:
    p = load_model("nvidia/Llama-3.1-70B-Instruct-FP8").precision
    assert (p.attention, p.dense_mlp, p.lm_head, p.kv_cache) == ("fp8", "fp8", "bf16", "fp8")


@pytest.mark.usefixtures("config_dir")
@pytest.mark.parametrize(
    ("alias", "target", "precisions"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-8B", ("bf16", "bf16")),
        ("meta-llama/Llama-3.1-70B", "meta-llama/Meta-Llama-3.1-70B", ("bf16", "bf16")),
        ("nvidia/Llama-3.1-8B-Instruct-FP8", "meta-llama/Meta-Llama-3.1-8B", ("fp8", "fp8")),
        ("nvidia/Qwen3-32B-NVFP4", "Qwen/Qwen3-32B", ("nvfp4", "nvfp4")),
    ],
)
def test_dense_aliases(alias: str, target: str, precisions: tuple[str, str]) -> None:
    arch, base = load_model(alias), load_model(target)
    assert arch.id == alias
    assert param_counts(arch) == param_counts(base)
    assert (arch.precision.attention, arch.precision.dense_mlp) == precisions


@pytest.mark.usefixtures("config_dir")
def test_deepseek_r1_nvfp4_alias() -> None:
    arch = load_model("nvidia/DeepSeek-R1-NVFP4")
    assert kv_elements_per_token(arch) == 35_136
    assert arch.precision.experts == "nvfp4" and arch.precision.kv_cache == "fp8"


@pytest.mark.usefixtures("config_dir")
def test_every_validation_model_resolves() -> None:
    root = shared_dir(required=False)
    csv_path = root / "validation" / "silicon_dev.csv" if root else None
    if csv_path is None or not csv_path.is_file():
        pytest.skip("validation data not present")
    with csv_path.open() as fh:
        ids = sorted({row["model_path"] for row in csv.DictReader(fh)})
    for model_id in ids:
        assert load_model(model_id).num_layers > 0, model_id


@pytest.mark.usefixtures("config_dir")
def test_unknown_id_suggests_close_matches() -> None:
    with pytest.raises(NotFoundError, match=r"did you mean: .*deepseek-ai/DeepSeek-R1"):
        load_model("deepseek-ai/DeepSeek-R2")


def test_path_to_file_and_folder(write_config, tiny_llama) -> None:
    path = write_config(tiny_llama(), sub="my-model")
    assert load_model(path).hidden_size == 64
    by_dir = load_model(path.parent)
    assert by_dir.id == "my-model" and by_dir.num_layers == 2


def test_folder_reads_hf_quant_config(write_config, tiny_llama) -> None:
    path = write_config(tiny_llama(), sub="q")
    write_config(
        {
            "quantization": {
                "quant_algo": "NVFP4",
                "kv_cache_quant_algo": "FP8",
                "exclude_modules": ["lm_head"],
            }
        },
        name="hf_quant_config.json",
        sub="q",
    )
    p = load_model(path.parent).precision
    assert (p.attention, p.dense_mlp, p.lm_head, p.kv_cache) == ("nvfp4", "nvfp4", "bf16", "fp8")


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(CodesignError, match="malformed JSON.*config.json"):
        load_model(bad)


def test_missing_field_is_named(write_config, tiny_llama) -> None:
    cfg = tiny_llama()
    del cfg["num_attention_heads"]
    with pytest.raises(UnsupportedModelError, match="LlamaForCausalLM.*'num_attention_heads'"):
        load_model(write_config(cfg))


def test_unknown_model_type_is_read_by_structure(write_config, tiny_llama) -> None:
    cfg = tiny_llama(model_type="fancy_new", architectures=["FancyForCausalLM"])
    arch = load_model(write_config(cfg))
    llama = load_model(write_config(tiny_llama()))
    for field in ("hidden_size", "num_layers", "attention", "dense_mlp", "moe", "layer_mixers"):
        assert getattr(arch, field) == getattr(llama, field), field
    assert "model_type 'fancy_new' has no parser of its own" in arch.notes[-1]


def test_wrong_type_field_is_refused(write_config, tiny_llama) -> None:
    with pytest.raises(UnsupportedModelError, match="hidden_size"):
        load_model(write_config(tiny_llama(hidden_size="64")))


def test_heads_not_multiple_of_kv_heads_is_refused(write_config, tiny_llama) -> None:
    with pytest.raises(UnsupportedModelError, match="num_kv_heads"):
        load_model(write_config(tiny_llama(num_key_value_heads=3)))
