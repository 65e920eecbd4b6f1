"""Exact parameter counts of a ModelArch, per component (integer arithmetic).

Conventions (see also tests/unit/models):
- ``total`` excludes MTP layers, reported separately as ``mtp`` (DeepSeek-V3: 671B + 14B).
- ``active`` = parameters touched by one token: everything except the routed experts not
  chosen (top-k of E), embeddings included (as in published "active" counts).
- ``active_gemm`` = ``active`` minus the embedding table (a lookup, no FLOPs); used for
  FLOPs as 2 x active_gemm per token.
- Latent-MoE projections (Nemotron-3 Super/Ultra) are counted under ``router`` (they run
  for every token, like the router).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from codesign.models.arch import AttentionSpec, ModelArch
from codesign.models.attn_layers import attention_groups

COMPONENTS: tuple[str, ...] = (
    "embeddings",
    "lm_head",
    "attention",
    "linear_attention",
    "mamba",
    "dense_mlp",
    "routed_experts",
    "shared_experts",
    "router",
    "norms",
)


class ParamCounts(BaseModel):
    """Parameter counts per component; ``mtp`` is not part of ``total``."""

    model_config = ConfigDict(frozen=True)

    embeddings: int = 0
    lm_head: int = 0
    attention: int = 0
    linear_attention: int = 0
    mamba: int = 0
    dense_mlp: int = 0
    routed_experts: int = 0
    shared_experts: int = 0
    router: int = 0
    norms: int = 0
    mtp: int = 0
    active_routed_experts: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, c) for c in COMPONENTS)

    @property
    def active(self) -> int:
        return self.total - self.routed_experts + self.active_routed_experts

    @property
    def active_gemm(self) -> int:
        return self.active - self.embeddings

    def breakdown(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in (*COMPONENTS, "mtp")}


def attention_params(arch: ModelArch) -> int:
    """Parameters of one softmax-attention layer of the primary spec."""
    return 0 if arch.attention is None else attention_spec_params(arch.attention, arch.hidden_size)


def attention_spec_params(a: AttentionSpec, h: int) -> int:
    """Parameters of one softmax-attention layer (projections, norms, sinks, indexer)."""
    if a.kind == "mla":
        nope, rope = a.qk_nope_head_dim or 0, a.qk_rope_head_dim or 0
        kvl, ql = a.kv_lora_rank or 0, a.q_lora_rank
        q_in = ql if ql else h
        n = (h * ql + ql) if ql else 0
        n += q_in * a.num_heads * (nope + rope)
        n += h * (kvl + rope) + kvl  # kv_a_proj_with_mqa + kv_a_layernorm
        n += kvl * a.num_heads * (nope + a.v_head_dim)  # kv_b_proj
        n += a.num_heads * a.v_head_dim * h  # o_proj
        if a.indexer is not None:
            ix = a.indexer
            n += q_in * ix.num_heads * ix.head_dim + h * ix.head_dim + 2 * ix.head_dim
            n += h * ix.num_heads
        return n
    gate = 2 if a.output_gate else 1
    q_out = a.num_heads * a.head_dim * gate
    kv_out = a.num_kv_heads * (a.head_dim + (0 if a.kv_shared else a.v_head_dim))
    o_in = a.num_heads * a.v_head_dim
    ql = a.q_lora_rank
    q = (h * ql + ql + ql * q_out) if ql else h * q_out  # low-rank query: down, norm, up
    # output: dense, or grouped low-rank (each group's heads -> rank, then all groups -> h)
    o = o_in * a.o_lora_rank + (a.o_groups or 1) * a.o_lora_rank * h if a.o_lora_rank else o_in * h
    n = q + h * kv_out + o
    if a.indexer is not None:
        ix = a.indexer
        n += (ql or h) * ix.num_heads * ix.head_dim + h * ix.head_dim + 2 * ix.head_dim
        n += h * ix.num_heads
    if a.bias:
        n += q_out + kv_out + h
    if a.qk_norm:
        n += 2 * a.head_dim
    if a.attention_sinks:
        n += a.num_heads
    return n


def linear_attention_params(arch: ModelArch) -> int:
    """One gated-DeltaNet layer: in_proj_qkv/z/b/a, conv1d, dt_bias, A_log, norm, out_proj."""
    la, h = arch.linear_attention, arch.hidden_size
    if la is None:
        return 0
    key_dim = la.num_key_heads * la.key_head_dim
    value_dim = la.num_value_heads * la.value_head_dim
    conv_dim = 2 * key_dim + value_dim
    n = h * (conv_dim + value_dim + 2 * la.num_value_heads)
    n += conv_dim * la.conv_kernel + 2 * la.num_value_heads + la.value_head_dim
    return n + value_dim * h


def mamba_params(arch: ModelArch) -> int:
    """One Mamba-2 layer: in_proj, conv1d (+bias), dt_bias, A_log, D, gated norm, out_proj."""
    m, h = arch.mamba, arch.hidden_size
    if m is None:
        return 0
    d_inner = m.num_heads * m.head_dim
    conv_dim = d_inner + 2 * m.n_groups * m.state_size
    n = h * (d_inner + conv_dim + m.num_heads)
    n += conv_dim * m.conv_kernel + conv_dim + 3 * m.num_heads + d_inner
    return n + d_inner * h


def _mlp(h: int, inter: int, gated: bool, bias: bool = False) -> int:
    mats = 3 if gated else 2
    n = mats * h * inter
    if bias:
        n += (2 * inter if gated else inter) + h
    return n


def dense_mlp_params(arch: ModelArch) -> int:
    d = arch.dense_mlp
    return 0 if d is None else _mlp(arch.hidden_size, d.intermediate_size, d.gated, d.bias)


def moe_params(arch: ModelArch) -> tuple[int, int, int, int]:
    """(routed experts, active routed experts, shared experts, router) of one MoE layer."""
    m, h = arch.moe, arch.hidden_size
    if m is None:
        return 0, 0, 0, 0
    d_in = m.latent_size or h
    one = _mlp(d_in, m.expert_intermediate_size, m.gated, m.expert_bias)
    shared = m.num_shared_experts * _mlp(h, m.shared_intermediate_size, m.gated)
    shared += h if m.shared_expert_gate else 0
    router = h * m.num_experts + (m.num_experts if m.router_bias else 0)
    if m.latent_size:
        router += 2 * h * m.latent_size
    return m.num_experts * one, m.experts_per_token * one, shared, router


def _mtp_params(arch: ModelArch) -> int:
    """One MTP module: eh_proj (2h x h), 3 norms, and a full-attention decoder layer."""
    if arch.num_mtp_layers == 0:
        return 0
    h = arch.hidden_size
    routed, _, shared, router = moe_params(arch)
    ffn = routed + shared + router if arch.moe is not None else dense_mlp_params(arch)
    layer = attention_params(arch) + ffn + 2 * h
    return arch.num_mtp_layers * (2 * h * h + 3 * h + layer)


def param_counts(arch: ModelArch) -> ParamCounts:
    """Exact parameter counts per component."""
    h = arch.hidden_size
    n_moe = arch.count_ffns("moe")
    routed, active_routed, shared, router = moe_params(arch)
    if arch.norms_per_layer == 1:  # Nemotron-H: one pre-norm per mixer or MLP block
        n_norms = sum(
            (m != "none") + (f != "none")
            for m, f in zip(arch.layer_mixers, arch.layer_ffns, strict=True)
        )
    else:
        n_norms = arch.norms_per_layer * arch.num_layers
    norms = n_norms * h + h  # + final norm
    return ParamCounts(
        embeddings=arch.vocab_size * h,
        lm_head=0 if arch.tie_word_embeddings else arch.vocab_size * h,
        attention=sum(g.layers * attention_spec_params(g.spec, h) for g in attention_groups(arch)),
        linear_attention=arch.count_mixers("linear_attention") * linear_attention_params(arch),
        mamba=arch.count_mixers("mamba") * mamba_params(arch),
        dense_mlp=arch.count_ffns("dense") * dense_mlp_params(arch),
        routed_experts=n_moe * routed,
        active_routed_experts=n_moe * active_routed,
        shared_experts=n_moe * shared,
        router=n_moe * router,
        norms=norms,
        mtp=_mtp_params(arch),
    )
