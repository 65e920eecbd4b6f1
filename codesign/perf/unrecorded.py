"""Worker counts of disaggregated benchmark rows that do not record them.

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

import numpy as np

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
