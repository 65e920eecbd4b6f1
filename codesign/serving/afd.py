"""Attention-FFN disaggregation (AFD): attention layers on one pool, FFN/experts on another.

Each decode step splits the batch into m micro-batches that ping-pong between the pools:
while the FFN pool works on micro-batch i, the attention pool works on i+1. Per layer,
with per-micro-batch times t_a (attention pool), t_f (FFN pool) and t_x (activations
sent one way), the steady-state layer time is m x max(t_a, t_f, 2 t_x) plus one fill of
the faster stages, so a step takes
    layers x (m x max(t_a, t_f, 2 t_x) + min(t_a, t_f) + 2 t_x).
With m = 1 this is the serial sum t_a + t_f + 2 t_x.
"""

from __future__ import annotations

import numpy as np


def afd_step_parts(
    layers: int,
    t_attn_layer: np.ndarray,
    t_ffn_layer: np.ndarray,
    t_transfer: np.ndarray,
    micro_batches: int = 2,
) -> dict[str, np.ndarray]:
    """A decode step's seconds by part (they sum to ``afd_step_time``); per-layer times
    are per micro-batch. One micro-batch: ``attention``, ``ffn`` and ``transfer`` (both
    hops) in turn; m: ``micro_batches_at_slowest`` (m x the slowest stage per layer) and
    ``pipeline_fill`` (the faster compute stage and both hops once per layer)."""
    m = max(int(micro_batches), 1)
    if m == 1:
        return {
            "attention": layers * t_attn_layer,
            "ffn": layers * t_ffn_layer,
            "transfer": layers * 2.0 * t_transfer,
        }
    bottleneck = np.maximum(np.maximum(t_attn_layer, t_ffn_layer), 2.0 * t_transfer)
    fill = np.minimum(t_attn_layer, t_ffn_layer) + 2.0 * t_transfer
    return {
        "micro_batches_at_slowest": layers * m * bottleneck,
        "pipeline_fill": layers * fill,
    }


def afd_step_time(
    layers: int,
    t_attn_layer: np.ndarray,
    t_ffn_layer: np.ndarray,
    t_transfer: np.ndarray,
    micro_batches: int = 2,
) -> np.ndarray:
    """Seconds per decode step; per-layer times are per micro-batch."""
    parts = afd_step_parts(layers, t_attn_layer, t_ffn_layer, t_transfer, micro_batches)
    return sum(parts.values())


def ffn_fanout(ffn_chips: int, top_k: int, is_moe: bool) -> float:
    """FFN chips one token's activation must reach (and come back from). Experts spread
    evenly over F chips and picked uniformly: a token's k experts sit on
    F (1 - (1 - 1/F)^k) distinct chips on average, each sent the hidden state once (and
    each returning one partial sum). A dense MLP tensor-parallel over F chips needs it on
    all F. DeepSeek-R1 (k = 8) on 8 FFN chips: 5.25 copies, not 1."""
    f = max(int(ffn_chips), 1)
    if not is_moe:
        return float(f)
    return f * (1.0 - (1.0 - 1.0 / f) ** max(int(top_k), 1))
