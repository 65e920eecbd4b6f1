"""Decode-step times of a group's rows (``perf.group.Group``): seconds per output token
with speculative decoding, tokens per engine iteration, the cost per running sequence
and what a request at the workload's high or median context adds over the mean. Shared
by the aggregated and disaggregated predictions (``perf.predict``)."""

from __future__ import annotations

import numpy as np

from codesign.perf.group import Group, make_load
from codesign.perf.hardware import HwVec
from codesign.perf.step import Bytes, Efficiency, Layout, step_time, verify_and_draft_s
from codesign.serving.specdec import expected_tokens_per_step, speculative_time_per_token


def decode_time(
    g: Group,
    i: np.ndarray,
    hw: HwVec,
    lay: Layout,
    n_dec: np.ndarray,
    ctx: np.ndarray,
    nb: Bytes,
    eff: Efficiency,
) -> np.ndarray:
    """Seconds per output token of a decode step, speculative decoding included."""
    if g.spec_k is None:
        return step_time(g.prof, hw, lay, make_load(n_dec, ctx, 0, 0, 0), nb, eff)["total"]
    k = g.spec_k[i]
    dec, verify, draft = verify_and_draft_s(g.prof, hw, lay, n_dec, ctx, k, nb, eff)
    per_token = speculative_time_per_token(verify, draft, k, g.spec_alpha[i])
    return np.where(k > 0, per_token, dec)


def tokens_per_iter(g: Group, i: np.ndarray) -> np.ndarray:
    """Output tokens per sequence per engine iteration (speculative decoding: the expected
    accepted drafts plus the verifier's own token)."""
    if g.spec_k is None:
        return np.ones(len(i))
    k = g.spec_k[i]
    return np.where(k > 0, expected_tokens_per_step(k, g.spec_alpha[i]), 1.0)


def own_ctx_deltas(
    g: Group,
    i: np.ndarray,
    hw: HwVec,
    lay: Layout,
    nb: Bytes,
    eff: Efficiency,
    ctx_mean: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode-step seconds that a request at the workload's p90 and median contexts adds
    over one at the mean: its own sequence's KV read and attention. The other sequences
    in its steps stay at the mean context (a median request shares its steps with the
    long ones; with attention-DP the busiest rank sets the step, as the replay times it)."""
    ctx_mean = np.asarray(ctx_mean, dtype=np.float64)
    if g.ctx_hi is None or g.ctx_mid is None:
        zero = np.zeros_like(ctx_mean)
        return zero, zero
    one = np.ones_like(ctx_mean)
    base = decode_time(g, i, hw, lay, one, ctx_mean, nb, eff)
    hi = decode_time(g, i, hw, lay, one, g.ctx_hi[i], nb, eff) - base
    return hi, decode_time(g, i, hw, lay, one, g.ctx_mid[i], nb, eff) - base


def per_seq_cost(
    g: Group,
    i: np.ndarray,
    hw: HwVec,
    lay: Layout,
    active: np.ndarray,
    ctx: np.ndarray,
    nb: Bytes,
    eff: Efficiency,
    t_dec: np.ndarray,
) -> np.ndarray:
    """Decode step cost per running sequence (slope between one and ``active``)."""
    one = decode_time(g, i, hw, lay, np.ones_like(active), ctx, nb, eff)
    return np.where(active > 1, (t_dec - one) / np.maximum(active - 1, 1e-9), 0.0)
