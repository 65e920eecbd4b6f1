"""Does a model fit on a deployment, and how much KV cache is left per chip and worker.

Sharding conventions (one worker = one model replica of tp x pp chips):
- attention, linear-attention/Mamba, dense MLP, shared experts, router and norms: split
  over tp x pp;
- routed experts: split over pp x max(ep, tp) (experts that do not get their own chips
  under EP are tensor-parallel over tp, as vLLM/SGLang do with ep=1);
- embeddings and lm_head: vocab-parallel over tp; with pp > 1 the first stage holds the
  embeddings and the last the lm_head, so a chip holds the larger of the two;
- KV cache: GQA heads split over tp (replicated when tp > kv_heads); MLA's latent is
  replicated on every tp rank; layers split over pp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from codesign.errors import SpecError
from codesign.models.arch import ModelArch, WeightPrecisions
from codesign.models.attn_layers import attention_groups
from codesign.models.derived import (
    kv_state_bytes_per_sequence,
    weight_bytes_breakdown,
)
from hwmodels.precision import get_precision

_GB = 1e9


class FitReport(BaseModel):
    """Memory budget of one chip under a parallel layout."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    chips: int
    tp: int
    pp: int
    ep: int
    chips_per_worker: int
    workers: int
    memory_bytes_per_chip: float
    usable_bytes_per_chip: float
    weight_bytes_per_chip: float
    weight_bytes_per_chip_breakdown: dict[str, float]
    kv_precision: str
    kv_bytes_per_token_per_chip: float
    state_bytes_per_sequence_per_chip: float
    kv_free_bytes_per_chip: float
    kv_tokens_per_worker: int
    kv_tokens_per_chip: float
    kv_tokens_total: int
    fits: bool
    reason: str


def _validate(arch: ModelArch, chips: int, tp: int, pp: int, ep: int) -> None:
    for name, v in (("chips", chips), ("tp", tp), ("pp", pp), ("ep", ep)):
        if v < 1:
            raise SpecError(f"{name} must be >= 1, got {v}")
    if chips % (tp * pp):
        raise SpecError(f"chips={chips} is not a multiple of tp x pp = {tp * pp}")
    for g in attention_groups(arch):
        if g.spec.num_heads % tp:
            raise SpecError(
                f"tp={tp} does not divide the {g.spec.num_heads} attention heads of {arch.id}"
            )
        kvh = g.spec.num_kv_heads
        if g.spec.kind == "gqa" and kvh % tp and tp % kvh:
            raise SpecError(
                f"tp={tp} neither divides nor is a multiple of the {kvh} KV heads of {arch.id}"
            )
    if pp > arch.num_layers:
        raise SpecError(f"pp={pp} exceeds the {arch.num_layers} layers of {arch.id}")
    if arch.moe is None:
        if ep > 1:
            raise SpecError(f"ep={ep} but {arch.id} has no experts")
    elif arch.moe.num_experts % ep:
        raise SpecError(f"ep={ep} does not divide the {arch.moe.num_experts} experts of {arch.id}")
    if ep * pp > chips:
        raise SpecError(f"ep x pp = {ep * pp} exceeds chips={chips}")


def weight_bytes_per_chip(
    arch: ModelArch,
    tp: int,
    pp: int,
    ep: int,
    weight_precision: str | Mapping[str, str] | WeightPrecisions | None = None,
    include_mtp: bool = False,
) -> dict[str, float]:
    """Bytes per chip per component under the sharding conventions above."""
    full = weight_bytes_breakdown(arch, weight_precision, include_mtp)
    expert_shards = pp * max(ep, tp)
    out: dict[str, float] = {}
    for comp, b in full.items():
        if comp == "routed_experts":
            out[comp] = b / expert_shards
        elif comp in ("embeddings", "lm_head"):
            continue
        else:
            out[comp] = b / (tp * pp)
    if pp == 1:
        out["embeddings"] = full["embeddings"] / tp
        out["lm_head"] = full["lm_head"] / tp
    else:
        out["embeddings_or_lm_head"] = max(full["embeddings"], full["lm_head"]) / tp
    return out


def _kv_bytes_per_token_per_chip(arch: ModelArch, tp: int, pp: int, kv_bpe: float) -> float:
    """Per-token KV bytes on one chip, every attention layer counted as growing (windows
    ignored; a compressed layer adds 1/ratio entry per token)."""
    total = 0.0
    for g in attention_groups(arch):
        per_layer = g.kv_elems * g.entries_per_token / g.rank_split(tp)
        total += per_layer * math.ceil(g.layers / pp)
    return total * kv_bpe


def fit_report(
    arch: ModelArch,
    memory_bytes_per_chip: float,
    chips: int,
    tp: int = 1,
    pp: int = 1,
    ep: int = 1,
    weight_precision: str | Mapping[str, str] | WeightPrecisions | None = None,
    kv_precision: str = "fp8",
    reserve_fraction: float = 0.1,
    include_mtp: bool = False,
) -> FitReport:
    """Weights per chip, whether they fit, and the KV capacity left (tokens).

    ``reserve_fraction`` of each chip's memory is kept for activations, CUDA graphs and
    fragmentation. Sliding-window layers are counted as if they grew (conservative).
    """
    _validate(arch, chips, tp, pp, ep)
    if not 0 <= reserve_fraction < 1:
        raise SpecError(f"reserve_fraction must be in [0, 1), got {reserve_fraction}")
    if memory_bytes_per_chip <= 0:
        raise SpecError(f"memory_bytes_per_chip must be > 0, got {memory_bytes_per_chip}")
    per_comp = weight_bytes_per_chip(arch, tp, pp, ep, weight_precision, include_mtp)
    weights = sum(per_comp.values())
    usable = memory_bytes_per_chip * (1 - reserve_fraction)
    free = usable - weights
    kv_bpe = get_precision(kv_precision).bytes_per_element
    kv_tok = _kv_bytes_per_token_per_chip(arch, tp, pp, kv_bpe)
    state = kv_state_bytes_per_sequence(arch) / (tp * pp)
    chips_per_worker = tp * pp
    workers = chips // chips_per_worker
    if free <= 0:
        tokens = 0
        reason = (
            f"weights need {weights / _GB:.1f} GB per chip at tp={tp} pp={pp} ep={ep} "
            f"but the chip has {usable / _GB:.1f} GB usable "
            f"({memory_bytes_per_chip / _GB:.1f} GB less {reserve_fraction:.0%} reserve)"
        )
    else:
        tokens = int(free // kv_tok) if kv_tok > 0 else 0
        reason = (
            f"fits: weights {weights / _GB:.1f} GB of {usable / _GB:.1f} GB usable per "
            f"chip, {free / _GB:.1f} GB left for KV cache"
        )
    return FitReport(
        model_id=arch.id,
        chips=chips,
        tp=tp,
        pp=pp,
        ep=ep,
        chips_per_worker=chips_per_worker,
        workers=workers,
        memory_bytes_per_chip=memory_bytes_per_chip,
        usable_bytes_per_chip=usable,
        weight_bytes_per_chip=weights,
        weight_bytes_per_chip_breakdown=per_comp,
        kv_precision=kv_precision,
        kv_bytes_per_token_per_chip=kv_tok,
        state_bytes_per_sequence_per_chip=state,
        kv_free_bytes_per_chip=max(free, 0.0),
        kv_tokens_per_worker=tokens,
        kv_tokens_per_chip=tokens / chips_per_worker,
        kv_tokens_total=tokens * workers,
        fits=free > 0,
        reason=reason,
    )
