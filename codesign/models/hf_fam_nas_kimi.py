"""Parsers for DeciLM / Nemotron-NAS (``nemotron-nas``) and Kimi Linear (``kimi_linear``).

Both families have per-layer structure that ``ModelArch`` cannot state directly, so they
are mapped onto uniform specs that keep, in priority order: total parameters, active
parameters, KV-cache elements per token, then attention/FFN FLOPs per token. Every
approximation is also written into the arch's ``notes``.

Nemotron-NAS (e.g. Llama-3.3-Nemotron-Super-49B-v1), per ``block_configs`` entry:

- attention ``no_op`` -> mixer ``none`` (no KV, no norm); a GQA block keeps its heads, KV
  heads = ``num_attention_heads / n_heads_in_group``. Varying KV heads become their mean
  (exact when it is an integer divisor of the head count; else the nearest divisor, with
  the attention-parameter difference moved into the dense-MLP pool and the KV change noted).
- ffn ``no_op`` -> ffn ``none``; otherwise SwiGLU of width
  ``round_up(int(2 * ffn_mult * hidden / 3), 256)``. Widths vary per layer, so all dense
  layers get ONE width chosen so 3 x hidden x width x layers equals the summed FFN
  parameters (rounding error below 1.5 x hidden x layers parameters, noted).
- ``replace_with_linear`` (a hidden x hidden linear, no KV): an attention one becomes
  mixer ``none``; an FFN one stays ffn ``dense``. Either way its hidden^2 weights (and the
  attention one's pre-norm) are added to the dense-MLP pool above: same total/active
  parameters and GEMM FLOPs, attributed to ``dense_mlp``.
- ``norms_per_layer=1``: one RMSNorm per non-``none`` mixer or FFN (as DeciLM builds them).
- window / sink attention variants (``window_length``, ``num_sink_tokens``) are refused
  unless the window is uniform (then: sliding attention).

Kimi Linear / Kimi K3 (``linear_attn_config``; ``kda_layers`` are 1-based):

- KDA layers -> ``linear_attention`` with a gated-DeltaNet spec of the same heads / dims /
  conv kernel: identical recurrent state (heads x d x d, fp32 as in vLLM) and conv state.
  KDA has ``hd + dP - hH + P - H`` more parameters per layer (h hidden, d head dim, H heads,
  P = H x d: low-rank decay gate f_a/f_b, one beta per head, per-channel dt_bias): +1.81M
  per layer on K3 (0.005% of the total), not counted; noted. A low-rank output gate
  (no ``use_full_rank_gate``: g_a/g_b) adds ``hd + dP - hP`` to that remainder.
- other layers -> MLA (``kind='mla'``); NoPE MLA still caches kv_lora + rope dims
  (576/token/layer) as vLLM does. The MLA sigmoid output gate (hidden x heads x v_head) is
  folded into ``q_lora_rank`` (each extra rank adds hidden + 1 + heads x qk_head params):
  exact to one rank, no KV or attention-pair FLOP change. Without q_lora it is refused.
- MoE: ``routed_expert_hidden_size`` -> ``MoeSpec.latent_size`` (latent down/up projections
  counted under ``router``); shared experts = ``num_shared_experts`` x moe_intermediate on
  the full hidden size; sigmoid router with score-correction bias. The latent RMSNorm
  (latent size per MoE layer) is not counted. SiTU-GLU is counted like SwiGLU (3 matrices).
- AttnRes (``attn_res_block_size``): 2 hidden-size vectors per residual site, 2 sites per
  layer, counted as 4 extra norms per layer (``norms_per_layer=6``); the residual bank's
  weighted sums (a few hidden-size vector ops per layer) are not costed.
"""

from __future__ import annotations

from typing import Any

from codesign.errors import UnsupportedModelError
from codesign.models.arch import AttentionSpec, DenseMlpSpec, LinearAttentionSpec, MoeSpec
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import Fields, _common


def _round_up(n: int, k: int) -> int:
    return n if n % k == 0 else n + k - n % k


def _ffn_width(ffn: dict[str, Any], h: int, where: str) -> int:
    if ffn.get("intermediate_size"):
        return int(ffn["intermediate_size"])
    if ffn.get("ffn_mult") is None:
        raise UnsupportedModelError(
            f"{where}: block ffn has neither ffn_mult nor intermediate_size"
        )
    return _round_up(int(2 * float(ffn["ffn_mult"]) * h / 3), 256)


def _gqa_params(h: int, heads: int, kv: int, d: int, bias: bool) -> int:
    n = h * (heads * d + 2 * kv * d) + heads * d * h
    return n + (heads * d + 2 * kv * d + h if bias else 0)


def _uniform_kv(heads: int, kvs: list[int]) -> int:
    mean = sum(kvs) / len(kvs)
    divisors = [k for k in range(1, heads + 1) if heads % k == 0]
    return min(divisors, key=lambda k: (abs(k - mean), -k))  # ties: more KV


def parse_nemotron_nas(c: Cfg) -> Fields:
    """DeciLM / Nemotron-NAS: per-layer block_configs mapped onto uniform GQA + SwiGLU."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    blocks = list(c.req("block_configs"))
    if len(blocks) != n:
        raise UnsupportedModelError(
            f"{c.arch_name}: block_configs has {len(blocks)} entries, num_hidden_layers is {n}"
        )
    heads = c.int("num_attention_heads")
    d = c.get("head_dim") or h // heads
    bias, mlp_bias = bool(c.get("attention_bias", False)), bool(c.get("mlp_bias", False))
    mixers: list[str] = []
    ffns: list[str] = []
    kvs: list[int] = []
    widths: list[int] = []
    windows: set[int] = set()
    lin_attn = lin_ffn = 0
    for i, b in enumerate(blocks):
        a, m = b.get("attention") or {}, b.get("ffn") or {}
        if a.get("num_sink_tokens") or a.get("unshifted_sink"):
            raise UnsupportedModelError(f"{c.arch_name}: block {i}: sink attention not modelled")
        if a.get("no_op"):
            mixers.append("none")
        elif a.get("replace_with_linear"):
            mixers.append("none")
            lin_attn += 1
        else:
            kvs.append(heads // int(a.get("n_heads_in_group") or 1))
            window = a.get("window_length")
            mixers.append("sliding_attention" if window else "full_attention")
            if window:
                windows.add(int(window))
        if m.get("no_op"):
            ffns.append("none")
        else:
            ffns.append("dense")
            if m.get("replace_with_linear"):
                lin_ffn += 1
            else:
                widths.append(_ffn_width(m, h, f"{c.arch_name}: block {i}"))
    if len(windows) > 1:
        raise UnsupportedModelError(f"{c.arch_name}: several attention windows {sorted(windows)}")
    notes: list[str] = [
        f"block_configs: {mixers.count('none')} of {n} attention blocks skipped (no-op/linear), "
        f"{ffns.count('none')} FFN blocks skipped"
    ]
    # Parameters the dense-MLP pool must hold beyond the real FFN blocks.
    extra = lin_attn * (h * h + h) + lin_ffn * h * h
    if lin_attn or lin_ffn:
        notes.append(
            f"replace_with_linear: {lin_attn} attention + {lin_ffn} FFN blocks "
            f"({h}x{h} linear each) counted in the uniform dense-MLP width"
        )
    fields_attn: AttentionSpec | None = None
    if kvs:
        kv = _uniform_kv(heads, kvs)
        extra += sum(_gqa_params(h, heads, k, d, bias) for k in kvs)
        extra -= len(kvs) * _gqa_params(h, heads, kv, d, bias)
        if len(set(kvs)) > 1:
            real, ours = 2 * d * sum(kvs), 2 * d * kv * len(kvs)
            notes.append(
                f"KV heads vary per layer {sorted(set(kvs))}: uniform {kv}; KV elements per "
                f"token {ours} vs {real} ({(ours - real) / real:+.2%})"
            )
        fields_attn = AttentionSpec(
            kind="gqa",
            num_heads=heads,
            num_kv_heads=kv,
            head_dim=d,
            v_head_dim=d,
            bias=bias,
            sliding_window_tokens=windows.pop() if windows else None,
        )
    n_dense = ffns.count("dense")
    dense = None
    if n_dense:
        per_width = 3 * h + (2 if mlp_bias else 0)
        base = h if mlp_bias else 0
        pool = sum(per_width * w + base for w in widths) + extra + base * lin_ffn
        width = max(1, round((pool / n_dense - base) / per_width))
        err = n_dense * (per_width * width + base) - pool
        notes.append(
            f"FFN width varies per layer ({min(widths, default=0)}..{max(widths, default=0)}): "
            f"uniform {width} over {n_dense} dense layers; total params off by {err:+,}"
        )
        dense = DenseMlpSpec(intermediate_size=width, bias=mlp_bias)
    elif extra:
        raise UnsupportedModelError(f"{c.arch_name}: linear blocks without any FFN not modelled")
    f.update(
        attention=fields_attn,
        dense_mlp=dense,
        layer_mixers=tuple(mixers),
        layer_ffns=tuple(ffns),
        norms_per_layer=1,
        notes=tuple(notes),
    )
    return f


def _kda_layers(c: Cfg, la: dict[str, Any], n: int) -> tuple[str, ...]:
    kda = {int(i) for i in la.get("kda_layers") or ()}
    full = {int(i) for i in la.get("full_attn_layers") or ()}
    if (
        kda & full
        or (full and kda | full != set(range(1, n + 1)))
        or not kda <= set(range(1, n + 1))
    ):
        raise UnsupportedModelError(
            f"{c.arch_name}: linear_attn_config kda_layers/full_attn_layers do not split "
            f"layers 1..{n}"
        )
    return tuple("linear_attention" if i + 1 in kda else "full_attention" for i in range(n))


def _kda_extra(h: int, heads: int, d: int, full_rank_gate: bool) -> int:
    """KDA layer params minus the gated-DeltaNet formula of params.linear_attention_params."""
    p = heads * d
    extra = h * d + d * p - h * heads + p - heads
    return extra if full_rank_gate else extra + h * d + d * p - h * p


def parse_kimi_linear(c: Cfg) -> Fields:
    """Kimi Linear / Kimi K3: KDA (as gated DeltaNet) + NoPE MLA hybrid, latent MoE."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    la = c.req("linear_attn_config")
    mixers = _kda_layers(c, la, n)
    lin_heads, lin_d = int(la["num_heads"]), int(la["head_dim"])
    lin_k = int(la.get("short_conv_kernel_size") or 4)
    heads = c.int("num_attention_heads")
    nope, rope, v = c.int("qk_nope_head_dim"), c.int("qk_rope_head_dim"), c.int("v_head_dim")
    q_lora, kv_lora = c.get("q_lora_rank"), c.int("kv_lora_rank")
    n_kda, n_mla = mixers.count("linear_attention"), mixers.count("full_attention")
    notes: list[str] = []
    if c.get("mla_use_output_gate") and n_mla:
        if not q_lora:
            raise UnsupportedModelError(f"{c.arch_name}: MLA output gate without q_lora_rank")
        gate, per_rank = h * heads * v, h + 1 + heads * (nope + rope)
        add = round(gate / per_rank)
        notes.append(
            f"MLA sigmoid output gate ({h}x{heads * v} = {gate / 1e6:.1f}M/layer x {n_mla}) "
            f"folded into q_lora_rank {q_lora} -> {q_lora + add} "
            f"({add * per_rank - gate:+,} params/layer)"
        )
        q_lora += add
    full_rank = bool(la.get("use_full_rank_gate", False))
    kda_diff = _kda_extra(h, lin_heads, lin_d, full_rank)
    if n_kda:
        notes.append(
            f"KDA ({n_kda} layers) as gated DeltaNet {lin_heads}x{lin_d}, conv {lin_k}: same "
            f"state; KDA minus our projection params (decay gate f_a/f_b, per-head beta, "
            f"dt_bias) = {kda_diff:+,}/layer = {n_kda * kda_diff / 1e6:+.1f}M total, uncounted"
        )
    if c.get("mla_use_nope"):
        notes.append(f"NoPE MLA: KV cache keeps kv_lora {kv_lora} + {rope} dims per layer")
    first_dense = c.get("first_k_dense_replace", 0)
    freq = c.get("moe_layer_freq", 1)
    ffns = tuple("moe" if i >= first_dense and i % freq == 0 else "dense" for i in range(n))
    moe_inter = c.int("moe_intermediate_size")
    n_shared = c.get("num_shared_experts", 0)
    latent = c.get("routed_expert_hidden_size")
    latent = latent if latent and latent != h else None
    moe = MoeSpec(
        num_experts=c.int("num_experts"),
        experts_per_token=c.int("num_experts_per_token", "num_experts_per_tok"),
        expert_intermediate_size=moe_inter,
        num_shared_experts=n_shared,
        shared_intermediate_size=moe_inter if n_shared else 0,
        router_bias=True,
        latent_size=latent,
    )
    if latent:
        notes.append(
            f"latent MoE: experts run at {latent}; {h}<->{latent} projections counted as "
            f"router (bf16); latent RMSNorm ({latent}/layer) not counted"
        )
    if c.get("hidden_act") not in (None, "silu"):
        notes.append(f"{c.get('hidden_act')} gated activation costed as SwiGLU (3 matrices)")
    norms = 2
    if c.get("attn_res_block_size"):
        norms = 6
        notes.append(
            "AttnRes residual bank: 4 hidden-size vectors/layer counted as norms; its "
            "weighted residual sums are not costed"
        )
    f.update(
        attention=AttentionSpec(
            kind="mla",
            num_heads=heads,
            num_kv_heads=heads,
            head_dim=nope + rope,
            v_head_dim=v,
            q_lora_rank=q_lora,
            kv_lora_rank=kv_lora,
            qk_nope_head_dim=nope,
            qk_rope_head_dim=rope,
        )
        if n_mla
        else None,
        linear_attention=LinearAttentionSpec(
            num_key_heads=lin_heads,
            key_head_dim=lin_d,
            num_value_heads=lin_heads,
            value_head_dim=lin_d,
            conv_kernel=lin_k,
        )
        if n_kda
        else None,
        moe=moe if "moe" in ffns else None,
        dense_mlp=DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
        if "dense" in ffns
        else None,
        layer_mixers=mixers,
        layer_ffns=ffns,
        norms_per_layer=norms,
        num_mtp_layers=c.get("num_nextn_predict_layers", 0),
        state_dtype="fp32",
        notes=tuple(notes),
    )
    return f
