"""LLM architectures from Hugging Face config.json, offline.

>>> from codesign.models import load_model, param_counts, kv_bytes_per_token
>>> arch = load_model("deepseek-ai/DeepSeek-V3")
>>> round(param_counts(arch).total / 1e9)
671
"""

from codesign.models.arch import (
    AttentionSpec,
    DenseMlpSpec,
    IndexerSpec,
    LinearAttentionSpec,
    MambaSpec,
    ModelArch,
    MoeSpec,
    WeightPrecisions,
)
from codesign.models.derived import (
    attention_kv_elements_per_layer,
    attention_pairs,
    decode_flops,
    kv_bytes,
    kv_bytes_per_token,
    kv_elements,
    kv_elements_per_token,
    kv_state_bytes_per_sequence,
    prefill_flops,
    resolve_precisions,
    weight_bytes,
    weight_bytes_breakdown,
)
from codesign.models.fit import FitReport, fit_report, weight_bytes_per_chip
from codesign.models.hf_config import parse_hf_config
from codesign.models.params import ParamCounts, param_counts
from codesign.models.registry import ALIASES, ModelEntry, list_models, load_model

__all__ = [
    "ALIASES",
    "AttentionSpec",
    "DenseMlpSpec",
    "FitReport",
    "IndexerSpec",
    "LinearAttentionSpec",
    "MambaSpec",
    "ModelArch",
    "ModelEntry",
    "MoeSpec",
    "ParamCounts",
    "WeightPrecisions",
    "attention_kv_elements_per_layer",
    "attention_pairs",
    "decode_flops",
    "fit_report",
    "kv_bytes",
    "kv_bytes_per_token",
    "kv_elements",
    "kv_elements_per_token",
    "kv_state_bytes_per_sequence",
    "list_models",
    "load_model",
    "param_counts",
    "parse_hf_config",
    "prefill_flops",
    "resolve_precisions",
    "weight_bytes",
    "weight_bytes_breakdown",
    "weight_bytes_per_chip",
]
