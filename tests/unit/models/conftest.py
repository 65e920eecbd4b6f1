"""Shared fixtures for codesign.models tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codesign.paths import hf_config_dirs


def _shared_config_dir() -> Path | None:
    for d in hf_config_dirs():
        if d.is_dir() and any(d.glob("*_config.json")):
            return d
    return None


@pytest.fixture(scope="session")
def config_dir() -> Path:
    d = _shared_config_dir()
    if d is None:
        pytest.skip("shared hf_configs folder not present")
    return d


def _tiny_llama(**over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "vocab_size": 100,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": False,
    }
    cfg.update(over)
    return cfg


@pytest.fixture
def tiny_llama() -> Callable[..., dict[str, Any]]:
    return _tiny_llama


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(cfg: dict[str, Any], name: str = "config.json", sub: str = "m") -> Path:
        folder = tmp_path / sub
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(json.dumps(cfg))
        return path

    return write
