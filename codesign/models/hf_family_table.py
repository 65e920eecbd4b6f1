"""Which parser handles each Hugging Face ``model_type``, and which families are refused
(with the reason a user sees)."""

from __future__ import annotations

from collections.abc import Callable

from codesign.errors import UnsupportedModelError
from codesign.models.hf_config import Cfg
from codesign.models.hf_fam_deepseek_v4 import parse_deepseek_v4
from codesign.models.hf_fam_gemma_mimo import parse_gemma4, parse_mimo_v2_flash
from codesign.models.hf_fam_nas_kimi import parse_kimi_linear, parse_nemotron_nas
from codesign.models.hf_fam_step_minimax import parse_minimax_m3, parse_step3p7
from codesign.models.hf_families import (
    Fields,
    parse_deepseek,
    parse_dense,
    parse_gpt_oss,
    parse_llama4,
    parse_minimax_m2,
    parse_mixtral,
    parse_nemotron_h,
    parse_qwen3_5,
    parse_qwen3_moe,
)

REFUSED: dict[str, str] = {}


def _refuse(reason: str) -> Callable[[Cfg], Fields]:
    def parser(c: Cfg) -> Fields:
        raise UnsupportedModelError(f"{c.arch_name}: {reason}")

    return parser


FAMILY_PARSERS: dict[str, Callable[[Cfg], Fields]] = {
    "llama": parse_dense,
    "mistral": parse_dense,
    "qwen2": parse_dense,
    "qwen3": parse_dense,
    "qwen3_vl_text": parse_dense,
    "mimo": parse_dense,
    "qwen3_moe": parse_qwen3_moe,
    "qwen3_vl_moe_text": parse_qwen3_moe,
    "mixtral": parse_mixtral,
    "minimax_m2": parse_minimax_m2,
    "gpt_oss": parse_gpt_oss,
    "deepseek_v3": parse_deepseek,
    "deepseek_v32": parse_deepseek,
    "kimi_k2": parse_deepseek,
    "glm_moe_dsa": parse_deepseek,
    "qwen3_5_text": parse_qwen3_5,
    "qwen3_5_moe_text": parse_qwen3_5,
    "nemotron_h": parse_nemotron_h,
    "llama4_text": parse_llama4,
    "nemotron-nas": parse_nemotron_nas,
    "kimi_linear": parse_kimi_linear,
    "step3p7": parse_step3p7,
    "minimax_m3": parse_minimax_m3,
    "minimax_m3_vl": parse_minimax_m3,
    "gemma4": parse_gemma4,
    "gemma4_text": parse_gemma4,
    "mimo_v2_flash": parse_mimo_v2_flash,
    "deepseek_v4": parse_deepseek_v4,
    "deepseek_ref": parse_deepseek_v4,
    **{k: _refuse(v) for k, v in REFUSED.items()},
}
