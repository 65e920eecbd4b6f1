"""What measured rows leave out of their deployment, or record in another convention.

Worker counts (``decode_workers``, ``prefill_workers``), for disaggregated rows that do
not record them. Layout columns holding products (``product_recorded_layout``) or a wide
expert-parallel deployment's GPU count (``wide_ep_recorded_layout``), and a concurrency
summed over replicas (``replica_clients``), below.

A disaggregated measurement ran on some number of prefill and decode workers; 736 of the
869 disagg dev rows (every DeepSeek-R1 and gpt-oss one) leave both counts empty. The
prediction then has to assume a deployment, and the old assumption (the fewest decode
workers that hold every client's KV, as many prefill workers) put every client on one
decode worker: a batch of 64 where the benchmark ran 16 per worker, TPOT over-predicted
1.35-1.55x on every system (dev rows, ``codesign validate --by model,mode``).

What benchmarks of disaggregated serving do instead, read off the 133 dev rows that do
record their layout (DeepSeek-V3, Qwen3, on H100/H200/B200/GB200; worker counts and
per-rank batches, not their latencies):

- Decode: the per-rank batch grows slower than the concurrency; the sweeps spread low
  concurrency over several workers (interactivity) and pack high concurrency into few
  wide ones (throughput). A least-squares fit of log(batch per attention-DP rank) on
  log(concurrency) gives ``0.51 c^0.84`` for TP decode workers (75 rows) and
  ``0.20 c^0.82`` for attention-DP ones (58 rows); residual sd 0.6 in log (a factor of
  about 1.8 either way: these are people's choices, not physics).
- Prefill: enough workers to keep up with the request rate that decode sustains without
  queueing, ``ceil(rate x prefill time / requests per worker pass)`` — a prefill pool
  smaller than that queues without bound in a closed loop, a larger one idles.

Both are guesses for rows that record nothing; a row that records a count keeps it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from codesign.perf.step import Layout
from codesign.validation.silicon import SiliconRows

# batch per attention-DP rank = A x concurrency^B (fitted on the rows that record layouts)
TP_DECODE_BATCH_A, TP_DECODE_BATCH_B = 0.51, 0.84
DP_DECODE_BATCH_A, DP_DECODE_BATCH_B = 0.20, 0.82


def decode_batch_per_rank(concurrency: np.ndarray, dp: np.ndarray) -> np.ndarray:
    """The decode batch per attention-DP rank that benchmarks typically ran at this
    concurrency (at least 1)."""
    c = np.maximum(np.asarray(concurrency, dtype=float), 1.0)
    tp = TP_DECODE_BATCH_A * c**TP_DECODE_BATCH_B
    dpb = DP_DECODE_BATCH_A * c**DP_DECODE_BATCH_B
    return np.maximum(np.where(np.asarray(dp) > 1, dpb, tp), 1.0)


def decode_workers(
    concurrency: np.ndarray, dp: np.ndarray, kv_fit_workers: np.ndarray
) -> np.ndarray:
    """Decode workers: enough ranks for the typical batch, and at least enough workers to
    hold every client's KV cache (``kv_fit_workers``)."""
    ranks = np.ceil(np.asarray(concurrency, dtype=float) / decode_batch_per_rank(concurrency, dp))
    return np.maximum(np.maximum(np.ceil(ranks / np.maximum(dp, 1)), kv_fit_workers), 1.0)


def prefill_workers(
    concurrency: np.ndarray,
    osl: np.ndarray,
    prefill_pass_s: np.ndarray,
    decode_step_s: np.ndarray,
    requests_per_pass: np.ndarray,
) -> np.ndarray:
    """Prefill workers that keep up with the unqueued request rate
    ``concurrency / (prefill pass + osl x decode step)``; ``requests_per_pass``: requests a
    worker prefills in one pass (per-rank batch x attention-DP ranks)."""
    rate = concurrency / (prefill_pass_s + osl * decode_step_s)
    return np.maximum(np.ceil(rate * prefill_pass_s / requests_per_pass - 1e-9), 1.0)


def product_recorded_layout(lay: Layout, gpus_per_domain: np.ndarray) -> Layout:
    """Undo two recording conventions of some agg sweeps, where a column holds a product:

    - the tp (or attention-DP) column holds tp x ep and the MoE columns tp and ep:
      ``tp_size 16, moe_tp 4, moe_ep 4`` on an 8-GPU B200 node is the run whose id reads
      ``tp4_ep4`` (the same TTFT/TPOT as the row that records ``tp 4, moe_tp 1,
      moe_ep 4``); ``attention_dp 64, moe 8 x 8`` is DEP8. Read as tp (or dp) = moe_tp,
      experts split ep ways and moe_tp / ep ways within;
    - ``tp 4, attention_dp 4, moe_ep 16`` (vLLM MiniMax rows whose ids read ``tp4_ep4``):
      the expert width is tp x dp of a worker that is tp GPUs wide. Read as tp 4, ep 4.

    A layout is re-read only when it cannot be what it says — more GPUs than the system's
    scale-up domain — and the reading is consistent (the new width fits the domain)."""
    width = lay.tp * lay.dp
    t, e = lay.moe_tp, lay.moe_ep
    over = width > gpus_per_domain
    product = (
        over
        & (width == t * e)
        & (e > 1)
        & (t >= e)
        & (np.mod(t, np.maximum(e, 1)) == 0)
        & (t <= gpus_per_domain)
        & ((lay.tp == 1) | (lay.dp == 1))
    )
    expert_width = (
        over & ~product & (t <= 1) & (e == width) & (lay.dp > 1) & (lay.tp <= gpus_per_domain)
    )
    if not (product.any() or expert_width.any()):
        return lay
    tp = np.where(product & (lay.dp == 1), t, lay.tp)
    dp = np.where(product & (lay.dp > 1), t, np.where(expert_width, 1.0, lay.dp))
    moe_tp = np.where(product, t / np.maximum(e, 1), lay.moe_tp)
    moe_ep = np.where(expert_width, lay.tp, lay.moe_ep)
    return Layout(tp=tp, dp=dp, moe_tp=moe_tp, moe_ep=moe_ep, pp=lay.pp)


def wide_ep_recorded_layout(lay: Layout, num_heads: int, is_moe: bool) -> Layout:
    """A third convention: the tp column holds the GPU count of a wide expert-parallel
    deployment. Tensor parallelism splits the attention heads, so every engine requires
    that tp divide them; ``tp 72`` (or 52, 36, 28 ...) of DeepSeek-R1's 128 heads on a
    GB200 NVL72 cannot be what ran. Those runs were wide-EP: attention data-parallel over
    the GPUs and the experts spread over all of them (DEP). Read an MoE layout whose tp
    does not divide the heads, with no attention-DP recorded, as dp = tp, ep = tp.
    (41 GB200 DeepSeek-R1 dev rows: median |log(pred / measured)| of TPOT 0.64 as TP,
    0.31 as DEP; TTFT 0.90 and 0.79.)"""
    if not is_moe or num_heads <= 0:
        return lay
    wide = (lay.dp <= 1) & (lay.tp > 1) & (np.mod(float(num_heads), np.maximum(lay.tp, 1)) != 0)
    if not wide.any():
        return lay
    return Layout(
        tp=np.where(wide, 1.0, lay.tp),
        dp=np.where(wide, lay.tp, lay.dp),
        moe_tp=np.where(wide, 1.0, lay.moe_tp),
        moe_ep=np.where(wide, lay.tp, lay.moe_ep),
        pp=lay.pp,
    )


def read_product_layouts(
    rows: SiliconRows, gpus_per_domain: np.ndarray, num_heads: int = 0, is_moe: bool = False
) -> SiliconRows:
    """Measured rows with their agg layout columns read by ``product_recorded_layout``
    and ``wide_ep_recorded_layout`` (disagg rows keep theirs). Only for measured rows: a
    deployment a user describes means what it says."""
    lay = Layout(
        tp=rows.tp.astype(np.float64),
        dp=np.maximum(rows.dp, 1).astype(np.float64),
        moe_tp=rows.moe_tp.astype(np.float64),
        moe_ep=rows.moe_ep.astype(np.float64),
        pp=np.maximum(rows.pp, 1).astype(np.float64),
    )
    read = product_recorded_layout(lay, np.asarray(gpus_per_domain, dtype=np.float64))
    read = wide_ep_recorded_layout(read, num_heads, is_moe)
    agg = rows.mode == "agg"
    changed = agg & (
        (read.tp != lay.tp)
        | (read.dp != lay.dp)
        | (read.moe_tp != lay.moe_tp)
        | (read.moe_ep != lay.moe_ep)
    )
    if not changed.any():
        return rows
    as_int = rows.tp.dtype

    def pick(new: np.ndarray, old: np.ndarray) -> np.ndarray:
        return np.where(changed, new, old).astype(as_int)

    return dataclasses.replace(
        rows,
        tp=pick(read.tp, rows.tp),
        dp=pick(read.dp, rows.dp),
        moe_tp=pick(read.moe_tp, rows.moe_tp),
        moe_ep=pick(read.moe_ep, rows.moe_ep),
    )


def replica_clients(c: np.ndarray, batch: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Clients per rank of a measured agg row that ran replicas. Some sweeps record the
    total client concurrency over k identical workers and the per-worker ``batch_size``
    (concurrency = k x batch). When the recorded clients' KV cannot fit on one worker
    but the batch's can, the row is read as k replicas of ``batch`` clients each
    (Qwen3-32B NVFP4 on 2 GB200s at 15K/0.5K: 448 clients, batch 14, 74 KV slots:
    measured 0.97 s TTFT and 13 ms TPOT, which a single worker with 448 clients cannot
    reach)."""
    k = c / np.maximum(batch, 1.0)
    replicas = (batch > 0) & (k > 1.0) & (np.abs(k - np.round(k)) < 1e-9)
    return np.where(replicas & (c > slots) & (batch <= slots), batch, c)
