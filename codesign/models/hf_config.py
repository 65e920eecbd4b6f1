"""Parse a Hugging Face ``config.json`` (+ ``hf_quant_config.json``) into a ``ModelArch``.

Entry point: ``parse_hf_config(config, hf_quant=None, model_id=...)``. Family parsers live
in ``hf_families``; any field a parser needs but does not find raises
``UnsupportedModelError`` naming the architecture and the field (never KeyError).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from codesign.errors import UnsupportedModelError
from codesign.models.arch import ATTENTION_MIXERS, ModelArch, WeightPrecisions
from codesign.models.quant import QuantRules, component_precision, parse_quant

_MISSING = object()
_FOUR_BIT = frozenset({"nvfp4", "mxfp4", "fp4", "int4_wo"})


class Cfg:
    """Read-only view of a config dict whose misses name the architecture and field."""

    def __init__(self, data: dict[str, Any], arch_name: str) -> None:
        self.data = data
        self.arch_name = arch_name

    def req(self, *keys: str) -> Any:
        """First present, non-null value among ``keys``; raise naming them otherwise."""
        for k in keys:
            v = self.data.get(k)
            if v is not None:
                return v
        raise UnsupportedModelError(
            f"{self.arch_name}: config.json has no {' / '.join(repr(k) for k in keys)}"
        )

    def int(self, *keys: str) -> int:
        v = self.req(*keys)
        if isinstance(v, bool) or not isinstance(v, int):
            raise UnsupportedModelError(
                f"{self.arch_name}: field {keys[0]!r} must be an integer, got {v!r}"
            )
        return v

    def get(self, key: str, default: Any = None) -> Any:
        v = self.data.get(key, _MISSING)
        return default if v is _MISSING or v is None else v

    def __contains__(self, key: str) -> bool:
        return self.data.get(key) is not None


def text_part(config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The language-model config (``text_config`` of multimodal checkpoints) and arch name."""
    archs = config.get("architectures") or []
    arch_name = archs[0] if archs else str(config.get("model_type", "unknown"))
    text = config.get("text_config")
    if isinstance(text, dict):
        merged = dict(text)
        for key in ("tie_word_embeddings", "quantization_config"):
            if key not in merged and key in config:
                merged[key] = config[key]
        return merged, arch_name
    return config, arch_name


def parse_hf_config(
    config: dict[str, Any],
    hf_quant: dict[str, Any] | None = None,
    model_id: str = "local",
    source_path: str | None = None,
) -> ModelArch:
    """Describe the checkpoint, or raise UnsupportedModelError saying why not."""
    from codesign.models.hf_fam_generic import parse_by_structure  # cyclic at import time
    from codesign.models.hf_family_table import FAMILY_PARSERS

    text, arch_name = text_part(config)
    family = str(text.get("model_type") or config.get("model_type") or "")
    parser = FAMILY_PARSERS.get(family) or FAMILY_PARSERS.get(str(config.get("model_type")))
    # a model_type without a parser is read by structure from its standard fields
    parser = parser or parse_by_structure
    qc = text.get("quantization_config") or config.get("quantization_config")
    rules = parse_quant(qc, hf_quant, arch_name)
    try:
        fields = parser(Cfg(text, arch_name))
        fields.setdefault("family", family)
        fields.setdefault("architecture", arch_name)
        draft = ModelArch(id=model_id, source_path=source_path, **fields)
        precision = precisions_for(draft, rules)
        if text.get("expert_dtype") == "fp4" and precision.experts not in _FOUR_BIT:
            # DeepSeek-V4 checkpoints store routed experts in FP4 (E2M1 with a UE8M0 scale
            # per 32 values: MXFP4) beside an FP8 quantization_config for the rest
            precision = precision.model_copy(update={"experts": "mxfp4"})
        return draft.model_copy(update={"precision": precision})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise UnsupportedModelError(
            f"{arch_name}: invalid {loc or 'config'}: {first['msg']}"
        ) from None


def precisions_for(arch: ModelArch, rules: QuantRules) -> WeightPrecisions:
    """Per-component native precision of ``arch`` under the checkpoint's rules."""
    attn_layers = [i for i, m in enumerate(arch.layer_mixers) if m in ATTENTION_MIXERS]
    kind = arch.attention.kind if arch.attention else "gqa"
    mx = arch.family == "nemotron_h"  # Nemotron-H names every block's module "mixer"
    fam = arch.family
    attention = component_precision(rules, attn_layers, kind, mx, fam)
    linear = _idx(arch.layer_mixers, "linear_attention")
    votes = [
        component_precision(rules, linear, "linear", family=fam),
        component_precision(rules, _idx(arch.layer_mixers, "mamba"), "mamba", mx, fam),
    ]
    recurrent = next((v for v in votes if v is not None), None)
    mixer = attention or recurrent or rules.default
    dense = component_precision(rules, _idx(arch.layer_ffns, "dense"), "dense", mx, fam)
    moe_layers = _idx(arch.layer_ffns, "moe")
    experts = component_precision(rules, moe_layers, "experts", mx, fam)
    shared = component_precision(rules, moe_layers, "shared", mx, fam)
    lm_head = None
    for name in ("lm_head", "language_model.lm_head"):
        lm_head = lm_head or rules.precision_of(name)
    return WeightPrecisions(
        attention=mixer,
        recurrent=recurrent or mixer,
        dense_mlp=dense or mixer,
        experts=experts or "bf16",
        shared_experts=shared or experts or "bf16",
        lm_head=lm_head or "bf16",
        kv_cache=rules.kv_cache,
        source=rules.source,
        excluded_modules=rules.excluded[:50],
    )


def _idx(kinds: tuple[str, ...], kind: str) -> list[int]:
    return [i for i, k in enumerate(kinds) if k == kind]
