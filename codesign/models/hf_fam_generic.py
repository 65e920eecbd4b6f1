"""A ``model_type`` without a parser of its own, read by structure from standard fields.

Measured rows are judged on model families the project has not seen, and a config whose
``model_type`` no parser knows would leave every row of that model unpredicted. Most
decoder-only checkpoints spell their shape with the same Hugging Face fields, so such a
config is read by what it has:

- MLA (``kv_lora_rank``): as DeepSeek-V3 (``parse_deepseek``);
- routed experts under any of the usual names (``n_routed_experts``, ``num_experts``,
  ``num_local_experts``, ``moe_num_experts``): GQA attention and an MoE whose expert
  size, top-k, shared experts and dense layers come from their usual names
  (``first_k_dense_replace``, ``decoder_sparse_step``, ``mlp_only_layers``,
  ``moe_layer_freq``);
- otherwise dense GQA (``parse_dense``).

Sliding-window layers come from ``layer_types`` when the config lists them. What a
family does beyond these fields (linear-attention or Mamba layers, unusual projections)
is not modelled; the model's notes say that it was read this way.
"""

from __future__ import annotations

from codesign.models.arch import DenseMlpSpec, MoeSpec
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import (
    Fields,
    _common,
    _gqa,
    _sliding,
    parse_deepseek,
    parse_dense,
)

_EXPERTS = ("n_routed_experts", "num_experts", "num_local_experts", "moe_num_experts")
_TOP_K = ("num_experts_per_tok", "moe_topk", "num_experts_per_token", "experts_per_token")
_EXPERT_SIZE = ("moe_intermediate_size", "expert_intermediate_size", "intermediate_size")
_SHARED_SIZE = ("shared_expert_intermediate_size", "shared_intermediate_size")
_WINDOWED = frozenset({"full_attention", "sliding_attention"})


def _layer_mixers(c: Cfg, n: int) -> tuple[tuple[str, ...], int | None]:
    """Per-layer full / sliding attention: ``layer_types`` when it lists only those,
    else the Qwen2-style fields."""
    types = c.get("layer_types")
    window = c.get("sliding_window")
    if isinstance(types, list) and len(types) == n and set(types) <= _WINDOWED:
        if "sliding_attention" in types and isinstance(window, int) and window > 0:
            return tuple(types), window
        return ("full_attention",) * n, None
    return _sliding(c, n)


def _moe(c: Cfg) -> Fields:
    f = _common(c)
    n = f["num_layers"]
    expert_size = c.int(*_EXPERT_SIZE)
    shared_n = int(c.get("n_shared_experts") or c.get("num_shared_experts") or 0)
    shared_size = next((c.get(k) for k in _SHARED_SIZE if c.get(k)), 0)
    if shared_n and not shared_size:
        shared_size = expert_size
    if shared_size and not shared_n:
        shared_n = 1
    first_dense = int(c.get("first_k_dense_replace", 0) or 0)
    step = c.get("decoder_sparse_step", 1)
    freq = c.get("moe_layer_freq", 1)
    step = step if isinstance(step, int) and step > 0 else 1
    freq = freq if isinstance(freq, int) and freq > 0 else 1
    dense_only = set(c.get("mlp_only_layers", []) or [])
    ffns = tuple(
        "moe"
        if i >= first_dense and i not in dense_only and (i + 1) % step == 0 and i % freq == 0
        else "dense"
        for i in range(n)
    )
    mixers, window = _layer_mixers(c, n)
    qk_norm = bool(c.get("use_qk_norm") or c.get("qk_norm") or c.get("qk_layernorm"))
    f.update(
        attention=_gqa(c, qk_norm=qk_norm, sliding_window_tokens=window),
        moe=MoeSpec(
            num_experts=c.int(*_EXPERTS),
            experts_per_token=c.int(*_TOP_K),
            expert_intermediate_size=expert_size,
            num_shared_experts=shared_n,
            shared_intermediate_size=int(shared_size),
            router_bias=c.get("topk_method") == "noaux_tc",
        ),
        dense_mlp=DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
        if "dense" in ffns
        else None,
        layer_mixers=mixers,
        layer_ffns=ffns,
        num_mtp_layers=c.get("num_nextn_predict_layers", 0),
    )
    return f


def parse_by_structure(c: Cfg) -> Fields:
    """Fields of a config whose ``model_type`` has no parser (module docstring)."""
    if c.get("kv_lora_rank"):
        f, how = parse_deepseek(c), "MLA and MoE, as DeepSeek-V3"
    elif any(c.get(k) for k in _EXPERTS):
        f, how = _moe(c), "GQA attention and routed experts"
    else:
        f = parse_dense(c)
        mixers, window = _layer_mixers(c, f["num_layers"])
        f["layer_mixers"] = mixers
        f["attention"] = f["attention"].model_copy(update={"sliding_window_tokens": window})
        how = "dense GQA"
    note = (
        f"model_type {c.get('model_type', '')!r} has no parser of its own: read from its "
        f"standard fields as {how}; layers of other kinds the family may have are not "
        "modelled"
    )
    f["notes"] = (*f.get("notes", ()), note)
    return f
