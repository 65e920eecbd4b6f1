"""Pydantic types describing an LLM architecture, independent of where it came from.

A ``ModelArch`` is frozen and round-trips through JSON. Per-layer structure is two
parallel tuples: ``layer_mixers`` (what mixes tokens in layer i) and ``layer_ffns`` (what
follows it). Layers of hybrid models such as Nemotron-H hold one of the two only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MixerKind = Literal[
    "full_attention",
    "sliding_attention",
    "chunked_attention",
    "linear_attention",
    "mamba",
    "none",
]
FfnKind = Literal["dense", "moe", "none"]
ATTENTION_MIXERS: frozenset[str] = frozenset(
    {"full_attention", "sliding_attention", "chunked_attention"}
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexerSpec(_Frozen):
    """DeepSeek sparse attention (DSA) lightning indexer: picks top-k keys per query."""

    num_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    topk_tokens: int = Field(gt=0, description="keys each query attends to")


class AttentionSpec(_Frozen):
    """Softmax attention of the attention layers (full, sliding or chunked)."""

    kind: Literal["gqa", "mla"]
    num_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0, description="for MLA: equal to num_heads (no GQA)")
    head_dim: int = Field(gt=0, description="query/key dim per head (MLA: nope + rope)")
    v_head_dim: int = Field(gt=0)
    q_lora_rank: int | None = Field(default=None, ge=1)
    kv_lora_rank: int | None = Field(default=None, ge=1)
    qk_nope_head_dim: int | None = Field(default=None, ge=0)
    qk_rope_head_dim: int | None = Field(default=None, ge=0)
    sliding_window_tokens: int | None = Field(default=None, ge=1)
    chunk_tokens: int | None = Field(default=None, ge=1, description="chunked local attention")
    attention_sinks: bool = False
    output_gate: bool = Field(default=False, description="sigmoid gate on the output (q x2)")
    qk_norm: bool = False
    bias: bool = False
    indexer: IndexerSpec | None = None
    o_lora_rank: int | None = Field(
        default=None, ge=1, description="GQA: low-rank output projection (DeepSeek-V4)"
    )
    o_groups: int | None = Field(
        default=None, ge=1, description="heads are split into this many output groups"
    )
    kv_shared: bool = Field(
        default=False,
        description="GQA: keys double as values (no v projection; one cached vector per KV head)",
    )
    kv_compress_ratio: int | None = Field(
        default=None,
        ge=2,
        description="compressed cache (DeepSeek-V4): one entry per this many tokens, beside "
        "a raw window of sliding_window_tokens",
    )

    @model_validator(mode="after")
    def _check(self) -> AttentionSpec:
        if self.kind == "mla":
            missing = [
                n
                for n in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim")
                if getattr(self, n) is None
            ]
            if missing:
                raise ValueError(f"MLA attention needs {', '.join(missing)}")
        elif self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}"
            )
        return self


class LinearAttentionSpec(_Frozen):
    """Gated DeltaNet (Qwen3.5/3.6 linear attention): a fixed-size recurrent state."""

    kind: Literal["gated_deltanet"] = "gated_deltanet"
    num_key_heads: int = Field(gt=0)
    key_head_dim: int = Field(gt=0)
    num_value_heads: int = Field(gt=0)
    value_head_dim: int = Field(gt=0)
    conv_kernel: int = Field(gt=0)


class MambaSpec(_Frozen):
    """Mamba-2 mixer (Nemotron-H)."""

    num_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    state_size: int = Field(gt=0)
    n_groups: int = Field(gt=0)
    conv_kernel: int = Field(gt=0)


class DenseMlpSpec(_Frozen):
    intermediate_size: int = Field(gt=0)
    gated: bool = Field(default=True, description="SwiGLU: 3 matrices; else up+down only")
    bias: bool = False


class MoeSpec(_Frozen):
    num_experts: int = Field(gt=0)
    experts_per_token: int = Field(gt=0)
    expert_intermediate_size: int = Field(gt=0)
    num_shared_experts: int = Field(default=0, ge=0)
    shared_intermediate_size: int = Field(
        default=0, ge=0, description="intermediate size of ONE shared expert"
    )
    shared_expert_gate: bool = Field(default=False, description="sigmoid gate (Qwen)")
    gated: bool = True
    expert_bias: bool = False
    router_bias: bool = Field(default=False, description="router bias / score correction")
    latent_size: int | None = Field(default=None, ge=1, description="latent MoE dim")

    @model_validator(mode="after")
    def _check(self) -> MoeSpec:
        if self.experts_per_token > self.num_experts:
            raise ValueError(
                f"experts_per_token {self.experts_per_token} > num_experts {self.num_experts}"
            )
        return self


class WeightPrecisions(_Frozen):
    """Native storage precision of each component of the checkpoint (hwmodels names)."""

    attention: str = "bf16"
    recurrent: str = Field(default="bf16", description="linear-attention / Mamba weights")
    dense_mlp: str = "bf16"
    experts: str = "bf16"
    shared_experts: str = "bf16"
    embeddings: str = "bf16"
    lm_head: str = "bf16"
    router: str = "bf16"
    norms: str = "bf16"
    kv_cache: str | None = Field(default=None, description="KV precision the file names")
    source: str = Field(default="bf16 (no quantization_config)")
    excluded_modules: tuple[str, ...] = ()


class ModelArch(_Frozen):
    """One decoder-only language model (the text part of multimodal checkpoints)."""

    id: str
    family: str = Field(description="config model_type, e.g. deepseek_v3")
    architecture: str = Field(description="HF architectures[0]")
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool = False
    max_context_tokens: int = Field(gt=0)
    attention: AttentionSpec | None = None
    extra_attention: tuple[AttentionSpec, ...] = Field(
        default=(), description="other attention shapes, for layers that differ"
    )
    layer_attention: tuple[int, ...] = Field(
        default=(),
        description="per layer: 0 = attention, k = extra_attention[k-1] (empty: all 0)",
    )
    linear_attention: LinearAttentionSpec | None = None
    mamba: MambaSpec | None = None
    dense_mlp: DenseMlpSpec | None = None
    moe: MoeSpec | None = None
    layer_mixers: tuple[MixerKind, ...]
    layer_ffns: tuple[FfnKind, ...]
    norms_per_layer: int = Field(default=2, ge=0, description="hidden-size norms per layer")
    num_mtp_layers: int = Field(default=0, ge=0, description="multi-token-prediction layers")
    state_dtype: str = Field(default="bf16", description="recurrent-state precision")
    precision: WeightPrecisions = WeightPrecisions()
    notes: tuple[str, ...] = ()
    source_path: str | None = None

    @model_validator(mode="after")
    def _check_layers(self) -> ModelArch:
        n = self.num_layers
        if len(self.layer_mixers) != n or len(self.layer_ffns) != n:
            raise ValueError(
                f"layer_mixers ({len(self.layer_mixers)}) and layer_ffns "
                f"({len(self.layer_ffns)}) must both have num_layers={n} entries"
            )
        needs = {
            "attention": any(m in ATTENTION_MIXERS for m in self.layer_mixers),
            "linear_attention": "linear_attention" in self.layer_mixers,
            "mamba": "mamba" in self.layer_mixers,
            "dense_mlp": "dense" in self.layer_ffns,
            "moe": "moe" in self.layer_ffns,
        }
        missing = [k for k, need in needs.items() if need and getattr(self, k) is None]
        if missing:
            raise ValueError(f"layers use {', '.join(missing)} but no spec is given")
        if self.layer_attention:
            if len(self.layer_attention) != n:
                raise ValueError(
                    f"layer_attention has {len(self.layer_attention)} entries, num_layers is {n}"
                )
            bad = [k for k in self.layer_attention if not 0 <= k <= len(self.extra_attention)]
            if bad:
                raise ValueError(
                    f"layer_attention indexes {sorted(set(bad))}; there are "
                    f"{len(self.extra_attention)} extra attention specs"
                )
        elif self.extra_attention:
            raise ValueError("extra_attention is given but layer_attention does not use it")
        return self

    def attention_of(self, layer: int) -> AttentionSpec | None:
        """The attention spec of ``layer`` (None for a model without attention)."""
        k = self.layer_attention[layer] if self.layer_attention else 0
        return self.attention if k == 0 else self.extra_attention[k - 1]

    def count_mixers(self, *kinds: str) -> int:
        return sum(1 for m in self.layer_mixers if m in kinds)

    def count_ffns(self, kind: str) -> int:
        return sum(1 for f in self.layer_ffns if f == kind)
