"""Attention-FFN disaggregation (AFD): attention layers on one pool, FFN/experts on another.

Each decode step splits the batch into m micro-batches that ping-pong between the pools.
Per layer, micro-batch i runs attention (t_a, attention pool), sends its hidden states
(t_x), runs the FFN (t_f, FFN pool) and comes back (t_x), then goes straight on to the
next layer's attention while the FFN pool works on micro-batch i + 1. All times are per
micro-batch; t_link <= t_x is the part of a hop that holds the link (its bytes; the rest
is latency), and the hops out and back use opposite directions of full-duplex links, so
they do not contend.

The schedule is a closed cycle: each micro-batch's own round trip R = t_a + t_f + 2 t_x
holds one micro-batch, and each resource (attention pool, FFN pool, each link direction)
serves the m micro-batches in turn. In steady state a layer takes the slower of the two,

    P = max(m S, R),   S = max(t_a, t_f, t_link)

(resource-bound when m S >= R: the busiest resource never idles; latency-bound below:
every micro-batch cycles without waiting, S apart). The pipeline fills and drains once
per step, not once per layer (the next step needs this step's sampled tokens):

    step = layers x P + min(R - S, (m - 1) S).

Resource-bound, the busiest resource works layers x m S, after the stages that precede
its first use and before those that follow its last, R - S in all; latency-bound, the
last micro-batch trails the first by m - 1 slots of S. The two agree at m S = R. With
m = 1, P = R and the fill is 0: the serial sum layers x (t_a + t_f + 2 t_x). Micro-batches
pay off when t_a ~ t_f and the hops are short (m = 2: a layer takes max(2 S, R) instead of
the 2 R of two serial half-batches); on a weight-streaming FFN pool each micro-batch reads
the expert weights again, so t_f shrinks less than 1/m and more micro-batches can lose.
"""

from __future__ import annotations

import numpy as np


def afd_step_parts(
    layers: int,
    t_attn_layer: np.ndarray,
    t_ffn_layer: np.ndarray,
    t_transfer: np.ndarray,
    micro_batches: int = 2,
    t_link: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """A decode step's seconds by part (they sum to ``afd_step_time``); per-layer times
    are per micro-batch, ``t_transfer`` one hop (``t_link``: the part of it that holds the
    link; default all of it). One micro-batch: ``attention``, ``ffn`` and ``transfer``
    (both hops) in turn. m: ``micro_batches_at_slowest`` (layers x m S),
    ``round_trip_excess`` (layers x (R - m S) where a micro-batch's own round trip is the
    longer cycle) and ``pipeline_fill`` (once per step), as in the module docstring."""
    m = max(int(micro_batches), 1)
    if m == 1:
        return {
            "attention": layers * t_attn_layer,
            "ffn": layers * t_ffn_layer,
            "transfer": layers * 2.0 * t_transfer,
        }
    link = t_transfer if t_link is None else np.minimum(t_link, t_transfer)
    slowest = np.maximum(np.maximum(t_attn_layer, t_ffn_layer), link)
    round_trip = t_attn_layer + t_ffn_layer + 2.0 * t_transfer
    return {
        "micro_batches_at_slowest": layers * m * slowest,
        "round_trip_excess": layers * np.maximum(round_trip - m * slowest, 0.0),
        "pipeline_fill": np.minimum(round_trip - slowest, (m - 1) * slowest),
    }


def afd_step_time(
    layers: int,
    t_attn_layer: np.ndarray,
    t_ffn_layer: np.ndarray,
    t_transfer: np.ndarray,
    micro_batches: int = 2,
    t_link: np.ndarray | None = None,
) -> np.ndarray:
    """Seconds per decode step; per-layer times are per micro-batch."""
    parts = afd_step_parts(layers, t_attn_layer, t_ffn_layer, t_transfer, micro_batches, t_link)
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
