"""Native weight precision per component from ``quantization_config`` / hf_quant_config.json.

Each component (attention, dense MLP, routed experts, ...) is probed with representative
module names per layer; a name takes the precision of the first rule that matches it
(per-module map, then exclusion list -> bf16, then config group targets, then the
method's default). The component gets the most common result over its layers.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from codesign.errors import UnsupportedModelError

_PREFIXES = ("model.", "model.language_model.", "language_model.model.", "backbone.", "")

# Representative module names per component, relative to "<prefix>layers.<i>.".
_PROBES: dict[str, tuple[str, ...]] = {
    "gqa": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"),
    "mla": (
        "self_attn.q_a_proj",
        "self_attn.q_b_proj",
        "self_attn.kv_a_proj_with_mqa",
        "self_attn.kv_b_proj",
        "self_attn.o_proj",
    ),
    "linear": ("linear_attn.in_proj_qkv", "linear_attn.in_proj_z", "linear_attn.out_proj"),
    "mamba": ("mixer.in_proj", "mixer.out_proj"),
    "dense": ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"),
    "experts": (
        "mlp.experts.0.down_proj",
        "mlp.experts.gate_up_proj",
        "block_sparse_moe.experts.0.w2",
    ),
    "shared": ("mlp.shared_experts.down_proj", "mlp.shared_expert.down_proj"),
}
# Families whose checkpoints name a component's modules differently.
_FAMILY_PROBES: dict[str, dict[str, tuple[str, ...]]] = {
    # Kimi linear (KDA) layers keep their projections under self_attn
    "kimi_linear": {
        "linear": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj")
    },
    # Gemma 4 experts sit beside the dense MLP, not inside it
    "gemma4": {"experts": ("experts.gate_up_proj", "experts.down_proj")},
    "gemma4_text": {"experts": ("experts.gate_up_proj", "experts.down_proj")},
    # DeepSeek-V4 reference-style names (its attention is GQA-shaped: one shared K=V head)
    **{
        fam: {
            "gqa": ("attn.wq_a", "attn.wq_b", "attn.wkv", "attn.wo_a", "attn.wo_b"),
            "experts": ("ffn.experts.0.w1", "ffn.experts.0.w2", "ffn.experts.0.w3"),
            "shared": ("ffn.shared_experts.w1", "ffn.shared_experts.w2"),
        }
        for fam in ("deepseek_v4", "deepseek_ref")
    },
}
# Nemotron-H names every block's module "mixer".
_PROBES_MIXER: dict[str, tuple[str, ...]] = {
    "gqa": ("mixer.q_proj", "mixer.k_proj", "mixer.v_proj", "mixer.o_proj"),
    "mamba": ("mixer.in_proj", "mixer.out_proj"),
    "dense": ("mixer.up_proj", "mixer.down_proj"),
    "experts": ("mixer.experts.0.up_proj", "mixer.experts.0.down_proj"),
    "shared": ("mixer.shared_experts.up_proj", "mixer.shared_experts.down_proj"),
}

_ALGO_TO_PRECISION: dict[str, str] = {
    "NVFP4": "nvfp4",
    "W4A16_NVFP4": "nvfp4",
    "NVFP4_AWQ": "nvfp4",
    "W4A8_NVFP4_FP8": "nvfp4",
    "FP8": "fp8",
    "FP8_PB_WO": "fp8_block",
    "FP8_BLOCK": "fp8_block",
    "MXFP4": "mxfp4",
    "MXFP8": "mxfp8",
    "W4A16_AWQ": "int4_wo",
    "W4A8_AWQ": "int4_wo",
    "INT4_AWQ": "int4_wo",
    "INT8": "int8",
    "W8A8_SQ_PER_CHANNEL": "int8",
    "W8A16": "int8",
}


def _algo(name: str | None, where: str) -> str:
    key = (name or "").upper()
    if key not in _ALGO_TO_PRECISION:
        raise UnsupportedModelError(f"{where}: unknown quant_algo {name!r}")
    return _ALGO_TO_PRECISION[key]


class PatternSet:
    """Module-name patterns as HF/ModelOpt/compressed-tensors write them, compiled once.

    ``re:...`` is a regular expression (match from the start); a pattern with ``*?[`` is a
    glob that also covers the module's children; a plain name matches the module, its
    children, or any module whose dotted name ends with it (``gate`` -> ``mlp.gate``).
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        plain, regexes = set(), []
        for p in self.patterns:
            if p.startswith("re:"):
                regexes.append(f"(?:{p[3:]})")
            elif any(c in p for c in "*?["):
                regexes.append(f"(?:{fnmatch.translate(p)[:-2]}(?:\\..*)?\\Z)")
            else:
                plain.add(p)
        self.plain = frozenset(plain)
        self.regex = re.compile("|".join(regexes)) if regexes else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, name: str) -> bool:
        if self.plain:
            parts = name.split(".")
            n = len(parts)
            for i in range(n):
                for j in range(i + 1, n + 1):
                    if (i == 0 or j == n) and ".".join(parts[i:j]) in self.plain:
                        return True
        return bool(self.regex and self.regex.match(name))


@dataclass
class QuantRules:
    """Ordered rules that give a module name its storage precision."""

    source: str
    default: str = "bf16"
    per_module: dict[str, str] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    groups: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    kv_cache: str | None = None
    _excluded: PatternSet = field(init=False, repr=False)
    _groups: list[tuple[PatternSet, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._excluded = PatternSet(self.excluded)
        self._groups = [
            (PatternSet(t for t in targets if t != "Linear"), p) for targets, p in self.groups
        ]

    def precision_of(self, name: str) -> str | None:
        """Precision of a module name, or None when no rule names it specifically."""
        if self.per_module:
            parts = name.split(".")
            for end in range(len(parts), 0, -1):  # the module itself, then its parents
                prec = self.per_module.get(".".join(parts[:end]))
                if prec is not None:
                    return prec
            return None  # mixed precision: modules not listed keep the default (bf16)
        if self._excluded.matches(name):
            return "bf16"
        for targets, prec in self._groups:
            if targets.matches(name):
                return prec
        return None

    def resolve(self, names: Iterable[str]) -> str:
        """First specific answer over name variants, else the default."""
        for n in names:
            p = self.precision_of(n)
            if p is not None:
                return p
        return self.default


def _variants(layer: int, rel: str) -> list[str]:
    return [f"{p}layers.{layer}.{rel}" for p in _PREFIXES]


def component_precision(
    rules: QuantRules,
    layers: list[int],
    probe: str,
    mixer_names: bool = False,
    family: str = "",
) -> str | None:
    """Most common precision of a component's probes over the given layers."""
    if not layers:
        return None
    probes = (
        _FAMILY_PROBES.get(family, {}).get(probe)
        or (_PROBES_MIXER if mixer_names else _PROBES)[probe]
    )
    votes: Counter[str] = Counter()
    for i in layers:
        for rel in probes:
            if rules.per_module:
                # a mixed-precision list names every quantised module: a probe it does not
                # name may simply not exist in this architecture (MiniMax-M3 experts are
                # w1/w2/w3), so only named modules vote
                named = next(
                    (p for p in map(rules.precision_of, _variants(i, rel)) if p is not None), None
                )
                if named is not None:
                    votes[named] += 1
            else:
                votes[rules.resolve(_variants(i, rel))] += 1
    return votes.most_common(1)[0][0] if votes else rules.default


def _fp8_kind(qc: dict[str, Any]) -> str:
    return "fp8_block" if qc.get("weight_block_size") else "fp8"


def _group_precision(weights: dict[str, Any], where: str) -> str:
    bits = weights.get("num_bits")
    kind = weights.get("type", "int")
    group = weights.get("group_size")
    if bits == 8:
        return "fp8" if kind == "float" else "int8"
    if bits == 4 and kind == "float":
        return "mxfp4" if group == 32 else "nvfp4"
    if bits == 4 and kind == "int":
        return "int4_wo"
    raise UnsupportedModelError(f"{where}: unsupported weight quantisation {weights}")


def parse_quant(
    qc: dict[str, Any] | None, hf_quant: dict[str, Any] | None, where: str
) -> QuantRules:
    """Build rules from config.json's quantization_config and/or hf_quant_config.json."""
    if hf_quant is not None:
        q = hf_quant.get("quantization", hf_quant)
        kv = q.get("kv_cache_quant_algo")
        kv_prec = _algo(kv, where) if kv else None
        algo = q.get("quant_algo")
        excluded = tuple(q.get("exclude_modules") or ())
        if algo and algo.upper() == "MIXED_PRECISION":
            layers = q.get("quantized_layers") or {}
            per = {k: _algo(v.get("quant_algo"), where) for k, v in layers.items()}
            return QuantRules(
                f"hf_quant_config MIXED_PRECISION ({len(per)} modules)",
                per_module=per,
                excluded=excluded,
                kv_cache=kv_prec,
            )
        prec = _algo(algo, where)
        return QuantRules(
            f"hf_quant_config {algo}", default=prec, excluded=excluded, kv_cache=kv_prec
        )
    if not qc:
        return QuantRules("bf16 (no quantization_config)")
    method = str(qc.get("quant_method", "")).lower()
    if method == "modelopt":
        return parse_quant(
            None,
            {
                "quantization": {
                    "quant_algo": qc.get("quant_algo"),
                    "exclude_modules": qc.get("ignore"),
                    "quantized_layers": qc.get("quantized_layers"),
                    "kv_cache_quant_algo": "FP8" if qc.get("kv_cache_scheme") else None,
                }
            },
            where,
        )
    if method == "fp8":
        excluded = tuple(qc.get("modules_to_not_convert") or ())
        return QuantRules(f"fp8 ({_fp8_kind(qc)})", default=_fp8_kind(qc), excluded=excluded)
    if method == "mxfp4":
        # gpt-oss: MXFP4 is applied to the MoE experts only; the rest stays bf16.
        excluded = tuple(qc.get("modules_to_not_convert") or ())
        return QuantRules("mxfp4 (experts)", default="mxfp4", excluded=excluded)
    if method == "compressed-tensors":
        groups = []
        for g in (qc.get("config_groups") or {}).values():
            groups.append((tuple(g.get("targets") or ()), _group_precision(g["weights"], where)))
        default = next((p for t, p in groups if "Linear" in t), "bf16")
        return QuantRules(
            "compressed-tensors",
            default=default,
            excluded=tuple(qc.get("ignore") or ()),
            groups=groups,
        )
    raise UnsupportedModelError(f"{where}: unknown quantization_config quant_method {method!r}")
