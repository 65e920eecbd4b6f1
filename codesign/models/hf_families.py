"""One parser per Hugging Face ``model_type``: config fields -> ModelArch fields.

Each parser takes a ``Cfg`` (the text part of the config) and returns keyword arguments
for ``ModelArch`` (without ``id``). Families that cannot be described are listed in
``hf_family_table.REFUSED`` with the reason, and raise UnsupportedModelError.
"""

from __future__ import annotations

from typing import Any

from codesign.errors import UnsupportedModelError
from codesign.models.arch import (
    AttentionSpec,
    DenseMlpSpec,
    IndexerSpec,
    LinearAttentionSpec,
    MambaSpec,
    MoeSpec,
)
from codesign.models.hf_config import Cfg

Fields = dict[str, Any]


def _common(c: Cfg) -> Fields:
    return {
        "hidden_size": c.int("hidden_size"),
        "num_layers": c.int("num_hidden_layers"),
        "vocab_size": c.int("vocab_size"),
        "tie_word_embeddings": bool(c.get("tie_word_embeddings", False)),
        "max_context_tokens": c.int("max_position_embeddings"),
    }


def _gqa(c: Cfg, **kw: Any) -> AttentionSpec:
    heads = c.int("num_attention_heads")
    head_dim = c.get("head_dim") or c.int("hidden_size") // heads
    return AttentionSpec(
        kind="gqa",
        num_heads=heads,
        num_kv_heads=c.get("num_key_value_heads") or heads,
        head_dim=head_dim,
        v_head_dim=head_dim,
        bias=bool(c.get("attention_bias", False)),
        **kw,
    )


def _sliding(c: Cfg, n: int) -> tuple[tuple[str, ...], int | None]:
    """Layer mixers of Qwen2-style configs (use_sliding_window + max_window_layers)."""
    if c.get("use_sliding_window") and c.get("sliding_window"):
        below = c.get("max_window_layers", n)
        return tuple(
            "full_attention" if i < below else "sliding_attention" for i in range(n)
        ), c.int("sliding_window")
    return ("full_attention",) * n, None


def parse_dense(c: Cfg) -> Fields:
    """Llama 3.x, Mistral, Qwen2/3 dense, Qwen3-VL text, MiMo-7B: dense GQA."""
    f = _common(c)
    n = f["num_layers"]
    mixers, window = _sliding(c, n)
    qk_norm = c.data.get("model_type", "").startswith("qwen3")
    f.update(
        attention=_gqa(c, qk_norm=qk_norm, sliding_window_tokens=window),
        dense_mlp=DenseMlpSpec(
            intermediate_size=c.int("intermediate_size"), bias=bool(c.get("mlp_bias", False))
        ),
        layer_mixers=mixers,
        layer_ffns=("dense",) * n,
        num_mtp_layers=c.get("num_nextn_predict_layers", 0),
    )
    return f


def parse_qwen3_moe(c: Cfg) -> Fields:
    """Qwen3-MoE and Qwen3-VL-MoE text: every ``decoder_sparse_step``-th layer is MoE."""
    f = _common(c)
    n = f["num_layers"]
    step = c.get("decoder_sparse_step", 1)
    dense_only = set(c.get("mlp_only_layers", []))
    ffns = tuple(
        "moe" if i not in dense_only and (i + 1) % step == 0 else "dense" for i in range(n)
    )
    mixers, window = _sliding(c, n)
    f.update(
        attention=_gqa(c, qk_norm=True, sliding_window_tokens=window),
        moe=MoeSpec(
            num_experts=c.int("num_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size"),
        ),
        dense_mlp=DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
        if "dense" in ffns
        else None,
        layer_mixers=mixers,
        layer_ffns=ffns,
    )
    return f


def parse_mixtral(c: Cfg) -> Fields:
    f = _common(c)
    n = f["num_layers"]
    window = c.get("sliding_window")
    f.update(
        attention=_gqa(c, sliding_window_tokens=window),
        moe=MoeSpec(
            num_experts=c.int("num_local_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("intermediate_size"),
        ),
        layer_mixers=("sliding_attention" if window else "full_attention",) * n,
        layer_ffns=("moe",) * n,
    )
    return f


def parse_minimax_m2(c: Cfg) -> Fields:
    f = parse_mixtral(c)
    f["attention"] = _gqa(c, qk_norm=bool(c.get("use_qk_norm", False)))
    f["layer_mixers"] = ("full_attention",) * f["num_layers"]
    shared = c.get("shared_intermediate_size", 0)
    f["moe"] = f["moe"].model_copy(
        update={
            "router_bias": bool(c.get("use_routing_bias", False)),
            "num_shared_experts": 1 if shared else 0,
            "shared_intermediate_size": shared,
        }
    )
    if c.get("use_mtp"):
        f["num_mtp_layers"] = c.get("num_mtp_modules", 1) * c.get("mtp_transformer_layers", 1)
    return f


def parse_gpt_oss(c: Cfg) -> Fields:
    f = _common(c)
    n = f["num_layers"]
    types = tuple(c.req("layer_types"))
    if len(types) != n:
        raise UnsupportedModelError(
            f"{c.arch_name}: layer_types has {len(types)} entries, num_hidden_layers is {n}"
        )
    f.update(
        attention=_gqa(c, sliding_window_tokens=c.int("sliding_window"), attention_sinks=True),
        moe=MoeSpec(
            num_experts=c.int("num_local_experts"),
            experts_per_token=c.int("num_experts_per_tok", "experts_per_token"),
            expert_intermediate_size=c.int("intermediate_size"),
            expert_bias=True,
            router_bias=True,
        ),
        layer_mixers=types,
        layer_ffns=("moe",) * n,
    )
    return f


def parse_deepseek(c: Cfg) -> Fields:
    """DeepSeek-V3/R1/V3.1/V3.2, Kimi K2/K2.5, GLM-5: MLA (+ DSA indexer) and MoE."""
    f = _common(c)
    n = f["num_layers"]
    heads = c.int("num_attention_heads")
    nope, rope = c.int("qk_nope_head_dim"), c.int("qk_rope_head_dim")
    indexer = None
    if "index_topk" in c:
        indexer = IndexerSpec(
            num_heads=c.int("index_n_heads"),
            head_dim=c.int("index_head_dim"),
            topk_tokens=c.int("index_topk"),
        )
    f["attention"] = AttentionSpec(
        kind="mla",
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=nope + rope,
        v_head_dim=c.int("v_head_dim"),
        q_lora_rank=c.get("q_lora_rank"),
        kv_lora_rank=c.int("kv_lora_rank"),
        qk_nope_head_dim=nope,
        qk_rope_head_dim=rope,
        bias=bool(c.get("attention_bias", False)),
        indexer=indexer,
    )
    first_dense = c.get("first_k_dense_replace", 0)
    freq = c.get("moe_layer_freq", 1)
    if "n_routed_experts" in c:
        ffns = tuple("moe" if i >= first_dense and i % freq == 0 else "dense" for i in range(n))
        n_shared = c.get("n_shared_experts", 0)
        f["moe"] = MoeSpec(
            num_experts=c.int("n_routed_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size"),
            num_shared_experts=n_shared,
            shared_intermediate_size=c.int("moe_intermediate_size") if n_shared else 0,
            router_bias=c.get("topk_method") == "noaux_tc",
        )
    else:
        ffns = ("dense",) * n
    if "dense" in ffns:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
    f.update(
        layer_mixers=("full_attention",) * n,
        layer_ffns=ffns,
        num_mtp_layers=c.get("num_nextn_predict_layers", 0),
    )
    if indexer is not None:
        f["notes"] = (f"DSA sparse attention: indexer picks top-{indexer.topk_tokens} keys",)
    return f


def parse_qwen3_5(c: Cfg) -> Fields:
    """Qwen3.5 / 3.6: gated-DeltaNet linear attention with every 4th layer full attention."""
    f = _common(c)
    n = f["num_layers"]
    types = c.get("layer_types")
    if types is None:
        every = c.int("full_attention_interval")
        types = ["full_attention" if (i + 1) % every == 0 else "linear_attention" for i in range(n)]
    f.update(
        attention=_gqa(c, qk_norm=True, output_gate=bool(c.get("attn_output_gate", False))),
        linear_attention=LinearAttentionSpec(
            num_key_heads=c.int("linear_num_key_heads"),
            key_head_dim=c.int("linear_key_head_dim"),
            num_value_heads=c.int("linear_num_value_heads"),
            value_head_dim=c.int("linear_value_head_dim"),
            conv_kernel=c.int("linear_conv_kernel_dim"),
        ),
        layer_mixers=tuple(types),
        num_mtp_layers=c.get("mtp_num_hidden_layers", 0),
        state_dtype="fp32" if c.get("mamba_ssm_dtype") == "float32" else "bf16",
    )
    if "num_experts" in c:
        shared = c.get("shared_expert_intermediate_size", 0)
        f["moe"] = MoeSpec(
            num_experts=c.int("num_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size"),
            num_shared_experts=1 if shared else 0,
            shared_intermediate_size=shared,
            shared_expert_gate=bool(shared),
        )
        dense_only = set(c.get("mlp_only_layers", []))
        f["layer_ffns"] = tuple("dense" if i in dense_only else "moe" for i in range(n))
        if dense_only:
            f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
    else:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
        f["layer_ffns"] = ("dense",) * n
    return f


_NEMOTRON_H = {
    "M": ("mamba", "none"),
    "*": ("full_attention", "none"),
    "-": ("none", "dense"),
    "E": ("none", "moe"),
}


_NEMOTRON_BLOCKS = {"mamba": "M", "attention": "*", "mlp": "-", "moe": "E"}


def _nemotron_pattern(c: Cfg) -> str:
    if "layers_block_type" in c:
        kinds = list(c.req("layers_block_type"))
        unknown = sorted({k for k in kinds if k not in _NEMOTRON_BLOCKS})
        if unknown:
            raise UnsupportedModelError(
                f"{c.arch_name}: layers_block_type has unknown block kinds {unknown}"
            )
        return "".join(_NEMOTRON_BLOCKS[k] for k in kinds)
    pattern = str(c.req("hybrid_override_pattern", "layers_block_type"))
    unknown = sorted(set(pattern) - set(_NEMOTRON_H))
    if unknown:
        raise UnsupportedModelError(
            f"{c.arch_name}: hybrid_override_pattern has unknown block kinds {unknown}"
        )
    return pattern


def parse_nemotron_h(c: Cfg) -> Fields:
    """Nemotron-H: one mixer OR one MLP per block (pattern M=Mamba2, *=attention, -=MLP, E=MoE)."""
    pattern = _nemotron_pattern(c)
    if "num_hidden_layers" not in c:
        c = Cfg({**c.data, "num_hidden_layers": len(pattern)}, c.arch_name)
    f = _common(c)
    if len(pattern) != f["num_layers"]:
        raise UnsupportedModelError(
            f"{c.arch_name}: block pattern has "
            f"{len(pattern)} blocks, num_hidden_layers is "
            f"{f['num_layers']}"
        )
    gated = c.get("mlp_hidden_act", "relu2") not in ("relu2", "relu")
    f.update(
        attention=_gqa(c),
        mamba=MambaSpec(
            num_heads=c.int("mamba_num_heads"),
            head_dim=c.int("mamba_head_dim"),
            state_size=c.int("ssm_state_size"),
            n_groups=c.int("n_groups"),
            conv_kernel=c.int("conv_kernel"),
        ),
        layer_mixers=tuple(_NEMOTRON_H[ch][0] for ch in pattern),
        layer_ffns=tuple(_NEMOTRON_H[ch][1] for ch in pattern),
        norms_per_layer=1,
        num_mtp_layers=c.get("num_nextn_predict_layers", 0),
        state_dtype="fp32" if c.get("mamba_ssm_cache_dtype") == "float32" else "bf16",
    )
    if "-" in pattern:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size"), gated=gated)
    if "E" in pattern:
        n_shared = c.get("n_shared_experts", 0)
        f["moe"] = MoeSpec(
            num_experts=c.int("n_routed_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size"),
            gated=gated,
            num_shared_experts=n_shared,
            shared_intermediate_size=c.int("moe_shared_expert_intermediate_size")
            if n_shared
            else 0,
            router_bias=True,
            latent_size=c.get("moe_latent_size"),
        )
    return f


def parse_llama4(c: Cfg) -> Fields:
    """Llama 4 text: chunked local attention (3 of 4 layers), MoE every Nth layer, 1 shared."""
    f = _common(c)
    n = f["num_layers"]
    step = c.int("interleave_moe_layer_step")
    ffns = tuple("moe" if (i + 1) % step == 0 else "dense" for i in range(n))
    no_rope = c.get("no_rope_layers")
    if no_rope:  # 1 = uses RoPE (chunked local attention), 0 = global NoPE layer
        mixers = tuple("chunked_attention" if r else "full_attention" for r in no_rope)
    else:
        interval = c.get("no_rope_layer_interval", 4)
        mixers = tuple(
            "full_attention" if (i + 1) % interval == 0 else "chunked_attention" for i in range(n)
        )
    f.update(
        attention=_gqa(
            c, qk_norm=bool(c.get("use_qk_norm", False)), chunk_tokens=c.int("attention_chunk_size")
        ),
        moe=MoeSpec(
            num_experts=c.int("num_local_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("intermediate_size"),
            num_shared_experts=1,
            shared_intermediate_size=c.int("intermediate_size"),
        ),
        layer_mixers=mixers,
        layer_ffns=ffns,
        notes=(
            "chunked attention modelled as a window of attention_chunk_size tokens (upper bound)",
        ),
    )
    if "dense" in ffns:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size_mlp"))
    return f
