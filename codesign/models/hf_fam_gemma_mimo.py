"""Gemma 4 (``gemma4`` / ``gemma4_text``) and MiMo-V2-Flash (``mimo_v2_flash``) parsers.

Both mix sliding-window and full-attention layers of different head shapes; ModelArch has
one AttentionSpec, so ``fit_uniform_attention`` maps the real layers onto a uniform one.
Query heads are kept (real tensor-parallel limits); kv heads (a divisor of them), the q/k
and v widths, how many layers are labelled full (the rest sliding) and the window are
searched to minimise, with weights 8/4/2/1 (the priority order), the relative errors of
total params, active params, KV elements of a 128K-token sequence and attention FLOPs of a
decode token at 128K. ``notes`` give every error. For the shipped configs (tests):

- Gemma 4 26B-A4B / 31B: 16 / 32 q heads, 2 / 4 kv heads, head_dim = v = 365, 7 / 14
  layers full (real 5 / 10, with 2 / 4 kv x 512 and K=V), the rest sliding with window
  3123 (real 1024, 8 / 16 kv x 256). Attention params -0.01%, KV at 128K -0.18%, FLOPs at
  128K +5.6%; below ~3K tokens the KV is low (-61% at 1024 tokens).
- MiMo-V2-Flash: 64 q / 4 kv heads, head_dim 193 / v 128 (real 192 / 128; the 39 sliding
  layers have 8 kv heads), 9 full + 39 sliding (window 128). Attention params -4.3%
  (total -0.06%, active -1.24%), KV at 128K -0.11%, FLOPs +0.31%; -45% at 128 tokens.
  Sinks (sliding layers only) are modelled on all (+576). MTP is not in config.json.
- Gemma K=V global layers have no v_proj; the cache is assumed to hold K and V. Layers
  reading an earlier layer's KV (``num_kv_shared_layers``) have no k/v weights and enter
  the fit with no cache, so the full/sliding split carries only the owners' cache.
- Gemma MoE: the dense MLP beside the experts is the shared expert; the router's
  per-expert scale counts as router bias, its h-wide scale as an 8th hidden-size norm.
  ``use_double_wide_mlp`` layers enter as the mean intermediate size.
- Gemma per-layer embeddings: their GEMMs (gate + projection per layer and the model
  projection spread over layers: 3 x h x ple per layer) are added to the MLP intermediate
  size (+ple: exact params and FLOPs); the lookup table (vocab x layers x ple) has no
  ModelArch field (vocab would inflate the LM head), so it is not counted (size in notes).
  ``layer_scalar`` (one number per layer) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from codesign.errors import UnsupportedModelError
from codesign.models.arch import AttentionSpec, DenseMlpSpec, ModelArch, MoeSpec
from codesign.models.hf_config import Cfg
from codesign.models.hf_families import Fields, _common
from codesign.models.params import param_counts

LONG_CONTEXT = 131072
_WEIGHTS = (8.0, 4.0, 2.0, 1.0)  # total params, active params, KV @128K, attention FLOPs


@dataclass(frozen=True)
class RealLayer:
    """One real attention layer."""

    full: bool
    heads: int
    kv_heads: int
    head_dim: int
    v_head_dim: int
    window: int | None = None
    k_is_v: bool = False  # no v_proj (Gemma 4 global layers)
    shares_kv: bool = False  # reads an earlier layer's cache: no k/v weights, no cache
    qk_norm: bool = False
    sinks: bool = False

    def params(self, h: int) -> int:
        n = h * self.heads * (self.head_dim + self.v_head_dim) + self.sinks * self.heads
        n += self.qk_norm * self.head_dim * (1 if self.shares_kv else 2)
        k_width = self.head_dim + (0 if self.k_is_v else self.v_head_dim)
        return n + (0 if self.shares_kv else h * self.kv_heads * k_width)

    def kv(self) -> int:
        return 0 if self.shares_kv else self.kv_heads * (self.head_dim + self.v_head_dim)

    def keys(self, ctx: int) -> int:
        return ctx if self.full or not self.window else min(ctx, self.window)

    def flops(self, ctx: int) -> int:
        return 2 * self.heads * (self.head_dim + self.v_head_dim) * self.keys(ctx)


@dataclass(frozen=True)
class UniformFit:
    spec: AttentionSpec
    n_full: int
    n_layers: int
    real: tuple[float, ...]  # attention params, KV @ctx, FLOPs @ctx, KV @real window
    ours: tuple[float, ...]
    errors: tuple[float, ...]  # relative: total, active, KV @ctx, FLOPs @ctx


def _metrics(h: int, a: AttentionSpec, n: int, nf: int, ctx: int, short: int) -> tuple[float, ...]:
    s = a.head_dim + a.v_head_dim
    per = h * (a.num_heads + a.num_kv_heads) * s + a.qk_norm * 2 * a.head_dim
    per += a.attention_sinks * a.num_heads

    def keys(c: int) -> float:
        return nf * c + (n - nf) * min(c, a.sliding_window_tokens or c)

    kv = a.num_kv_heads * s
    return n * per, kv * keys(ctx), 2 * a.num_heads * s * keys(ctx), kv * keys(short)


def fit_uniform_attention(
    h: int, layers: list[RealLayer], base_total: int, base_active: int, ctx: int = LONG_CONTEXT
) -> UniformFit:
    """Uniform attention closest to ``layers`` (see the module docstring)."""
    n, heads = len(layers), layers[0].heads
    ref = next((x for x in layers if x.full and not x.shares_kv), layers[0])
    win = min((x.window for x in layers if x.window and not x.full), default=ctx)
    real = (
        sum(x.params(h) for x in layers),
        sum(x.kv() * x.keys(ctx) for x in layers),
        sum(x.flops(ctx) for x in layers),
        sum(x.kv() * x.keys(win) for x in layers),
    )
    total, active = base_total + real[0], base_active + real[0]
    growth = sum(x.kv() for x in layers if x.full)  # per-token elements, unbounded layers
    capped = sum(x.kv() * x.keys(ctx) for x in layers if not x.full)
    fl_full = sum(x.flops(1) for x in layers if x.full)
    fl_capped = sum(x.flops(ctx) for x in layers if not x.full)

    def errors(m: tuple[float, ...]) -> tuple[float, ...]:
        dp = m[0] - real[0]
        return dp / total, dp / active, m[1] / real[1] - 1, m[2] / real[2] - 1

    best: tuple[tuple[float, ...], AttentionSpec, int] | None = None
    for k in (d for d in range(1, heads + 1) if heads % d == 0):
        for nf in range(0 if capped or fl_capped else n, n + 1):
            s_cands = [real[0] / n / (h * (heads + k))]
            if nf:
                s_cands += [growth / (nf * k), fl_full / (nf * 2 * heads)]
            for s in {max(2, int(v) + dv) for v in s_cands for dv in (0, 1)}:
                w_cands: set[int | None] = {None}
                if nf < n:
                    w_fit = (capped / ((n - nf) * k * s), fl_capped / ((n - nf) * 2 * heads * s))
                    w_cands = {win} | {max(1, int(v) + dv) for v in w_fit for dv in (0, 1)}
                d = max(1, round(s * ref.head_dim / (ref.head_dim + ref.v_head_dim)))
                for w in w_cands:
                    a = AttentionSpec(
                        kind="gqa",
                        num_heads=heads,
                        num_kv_heads=k,
                        head_dim=d,
                        v_head_dim=s - d,
                        sliding_window_tokens=w,
                        qk_norm=ref.qk_norm,
                        attention_sinks=any(x.sinks for x in layers),
                    )
                    e = errors(_metrics(h, a, n, nf, ctx, win))
                    score = sum(wt * abs(x) for wt, x in zip(_WEIGHTS, e, strict=True))
                    key = (round(score, 12), k, nf, s, w or 0)
                    if best is None or key < best[0]:
                        best = (key, a, nf)
    if best is None:
        raise ValueError("no attention layers to fit")
    _, spec, nf = best
    ours = _metrics(h, spec, n, nf, ctx, win)
    return UniformFit(spec, nf, n, real, ours, errors(ours))


def _place_full(real_full: list[bool], nf: int) -> tuple[str, ...]:
    """``nf`` full-attention labels: on real full layers first, then spread evenly."""
    full = [i for i, f in enumerate(real_full) if f]
    rest = [i for i, f in enumerate(real_full) if not f]
    if nf <= len(full):
        chosen = {full[int((j + 0.5) * len(full) / nf)] for j in range(nf)}
    else:
        extra = nf - len(full)
        chosen = set(full) | {rest[int((j + 0.5) * len(rest) / extra)] for j in range(extra)}
    return tuple(
        "full_attention" if i in chosen else "sliding_attention" for i in range(len(real_full))
    )


def _fit_notes(fit: UniformFit, layers: list[RealLayer]) -> tuple[str, ...]:
    a, e, ctx = fit.spec, fit.errors, LONG_CONTEXT
    groups: dict[str, int] = {}
    for x in layers:
        label = f"{'full' if x.full else f'sliding {x.window}'} {x.heads}q/{x.kv_heads}kv x "
        label += f"{x.head_dim}/{x.v_head_dim}" + " K=V" * x.k_is_v + " shared-KV" * x.shares_kv
        groups[label] = groups.get(label, 0) + 1
    real = ", ".join(f"{n} {k}" for k, n in groups.items())
    return (
        f"attention as one uniform shape: {a.num_heads} q / {a.num_kv_heads} kv heads, head_dim "
        f"{a.head_dim} / v {a.v_head_dim}; {fit.n_full} of {fit.n_layers} layers full, the rest "
        f"sliding (window {a.sliding_window_tokens}); real: {real}",
        f"attention fit: params {fit.ours[0]:,.0f} vs {fit.real[0]:,.0f} (total {e[0]:+.2%}, "
        f"active {e[1]:+.2%}); KV at {ctx} tokens {e[2]:+.2%}; attention FLOPs/token at {ctx} "
        f"{e[3]:+.2%}",
        f"KV of short sequences is off: {fit.ours[3] / fit.real[3] - 1:+.1%} at the real window",
    )


def _finish(f: Fields, h: int, layers: list[RealLayer], notes: list[str]) -> Fields:
    """Fit the attention against the rest of the model and label the layers."""
    ref = layers[0]
    provisional = AttentionSpec(
        kind="gqa", num_heads=ref.heads, num_kv_heads=ref.heads, head_dim=1, v_head_dim=1
    )
    draft = {**f, "attention": provisional, "layer_mixers": ("full_attention",) * len(layers)}
    c = param_counts(ModelArch(id="fit", family="fit", architecture="fit", **draft))
    fit = fit_uniform_attention(h, layers, c.total - c.attention, c.active - c.attention)
    f["attention"] = fit.spec
    f["layer_mixers"] = _place_full([x.full for x in layers], fit.n_full)
    f["notes"] = (*_fit_notes(fit, layers), *notes)
    return f


def parse_gemma4(c: Cfg) -> Fields:
    """Gemma 4 text: sliding/global layers of different shapes, optional MoE, KV sharing, PLE."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    types = list(c.req("layer_types"))
    if len(types) != n:
        raise UnsupportedModelError(
            f"{c.arch_name}: layer_types has {len(types)} entries, num_hidden_layers is {n}"
        )
    heads, k_eq_v = c.int("num_attention_heads"), bool(c.get("attention_k_eq_v", False))
    local_dim = c.int("head_dim")
    shared_from = n - c.get("num_kv_shared_layers", 0)
    sliding = RealLayer(
        False,
        heads,
        c.int("num_key_value_heads"),
        local_dim,
        local_dim,
        c.int("sliding_window"),
        qk_norm=True,
    )
    g_dim = c.get("global_head_dim") or local_dim
    g_kv = c.int("num_global_key_value_heads") if k_eq_v else sliding.kv_heads
    full = RealLayer(True, heads, g_kv, g_dim, g_dim, k_is_v=k_eq_v, qk_norm=True)
    layers = [
        replace(full if t == "full_attention" else sliding, shares_kv=i >= shared_from)
        for i, t in enumerate(types)
    ]
    notes: list[str] = []
    if k_eq_v:
        notes.append("global layers use K=V (no v_proj); the cache is assumed to hold K and V")
    if shared_from < n:
        notes.append(
            f"layers {shared_from}..{n - 1} reuse earlier layers' KV: no k/v weights, no cache"
        )
    wide = 2 if c.get("use_double_wide_mlp") else 1
    sizes = [c.int("intermediate_size") * (wide if i >= shared_from else 1) for i in range(n)]
    inter = round(sum(sizes) / n)
    if inter * n != sum(sizes):
        notes.append(f"double-wide MLP layers averaged: intermediate {inter} (mean)")
    ple = c.get("hidden_size_per_layer_input", 0)
    if ple:
        inter += ple
        table = c.get("vocab_size_per_layer_input", f["vocab_size"]) * n * ple
        notes.append(
            f"per-layer embeddings: GEMMs folded into the MLP (+{ple} intermediate); lookup "
            f"table of {table:,} params not counted"
        )
    if c.get("enable_moe_block"):
        f["moe"] = MoeSpec(
            num_experts=c.int("num_experts"),
            experts_per_token=c.int("top_k_experts", "num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size", "expert_intermediate_size"),
            num_shared_experts=1,
            shared_intermediate_size=inter,
            router_bias=True,
        )
        f["layer_ffns"] = ("moe",) * n
        f["norms_per_layer"] = 8 + (1 if ple else 0)
        notes.append(
            "MoE: dense MLP beside the experts = shared expert; router per-expert scale = router "
            f"bias; router h-scale counted as a norm (norms_per_layer {f['norms_per_layer']})"
        )
    else:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=inter)
        f["layer_ffns"] = ("dense",) * n
        f["norms_per_layer"] = 4 + (1 if ple else 0)
    return _finish(f, h, layers, notes)


def parse_mimo_v2_flash(c: Cfg) -> Fields:
    """MiMo-V2-Flash: 5:1 sliding/full attention with per-kind kv heads, MoE after layer 0."""
    f = _common(c)
    n, h = f["num_layers"], f["hidden_size"]
    pattern = list(c.req("hybrid_layer_pattern"))  # 1 = sliding window, 0 = full
    moe_flags = c.req("moe_layer_freq")  # per layer: 1 = MoE, 0 = dense MLP
    if not isinstance(moe_flags, list) or len(pattern) != n or len(moe_flags) != n:
        raise UnsupportedModelError(
            f"{c.arch_name}: hybrid_layer_pattern and moe_layer_freq must be lists of "
            f"num_hidden_layers={n} entries"
        )
    d, swa_d = c.int("head_dim"), c.int("swa_head_dim", "head_dim")
    full = RealLayer(
        True,
        c.int("num_attention_heads"),
        c.int("num_key_value_heads"),
        d,
        c.get("v_head_dim") or d,
        sinks=bool(c.get("add_full_attention_sink_bias")),
    )
    swa = RealLayer(
        False,
        c.int("swa_num_attention_heads"),
        c.int("swa_num_key_value_heads"),
        swa_d,
        c.get("swa_v_head_dim") or swa_d,
        c.int("sliding_window_size", "sliding_window"),
        sinks=bool(c.get("add_swa_attention_sink_bias")),
    )
    layers = [swa if p else full for p in pattern]
    ffns = tuple("moe" if m else "dense" for m in moe_flags)
    f["layer_ffns"] = ffns
    if "moe" in ffns:
        f["moe"] = MoeSpec(
            num_experts=c.int("n_routed_experts"),
            experts_per_token=c.int("num_experts_per_tok"),
            expert_intermediate_size=c.int("moe_intermediate_size"),
            router_bias=c.get("topk_method") == "noaux_tc",
        )
    if "dense" in ffns:
        f["dense_mlp"] = DenseMlpSpec(intermediate_size=c.int("intermediate_size"))
    notes = ["MTP modules (model card) are not described by config.json: not counted"]
    sinks = [x.sinks for x in layers]
    if any(sinks) and not all(sinks):
        notes.append(f"attention sinks on {sum(sinks)} of {n} layers, modelled on all")
    return _finish(f, h, layers, notes)
