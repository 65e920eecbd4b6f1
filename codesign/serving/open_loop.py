"""Open-loop serving: requests arrive at a given rate, independent of how fast they finish.

The decode step time is affine in the decode batch, t(B) = a + b B (weights and fixed
costs in a; KV reads and per-token compute in b), and Little's law gives the batch:
B = X (osl - 1) TPOT. With prefill utilisation rho = X w (aggregated: prefill work rides
in the decode steps),

    TPOT = t(1 + B) / (1 - rho)  =>  TPOT = (a + b) / (1 - rho - b X (osl - 1)),

(a token's step holds its own sequence plus, Poisson arrivals seeing time averages, B
others),

finite while the denominator is positive; otherwise the deployment is overloaded at that
rate and TTFT/TPOT are reported as infinite. TTFT adds an M/D/1-like queueing wait
q rho / (1 - rho) w for prefill slots (disaggregated: on the prefill pool).
"""

from __future__ import annotations

import numpy as np

from codesign.serving.adp_balance import balance_wait_s
from codesign.serving.closed_loop import queue_wait


def _affine(
    t_small: np.ndarray, t_large: np.ndarray, b_small: np.ndarray, b_large: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    slope = (t_large - t_small) / np.maximum(b_large - b_small, 1e-12)
    return np.maximum(t_small - slope * b_small, 0.0), np.maximum(slope, 0.0)


def aggregated_open(
    rate_per_rank: np.ndarray,
    osl: np.ndarray,
    t_dec_small: np.ndarray,
    t_dec_large: np.ndarray,
    b_small: np.ndarray,
    b_large: np.ndarray,
    t_own_prefill: np.ndarray,
    prefill_work_s: np.ndarray,
    ttft_overhead_s: np.ndarray,
    q: float,
    adp_ranks: np.ndarray | float = 1.0,
    adp_timeout_iters: np.ndarray | float = 0.0,
    tokens_per_iter: np.ndarray | float = 1.0,
) -> dict[str, np.ndarray]:
    """``adp_*``, ``tokens_per_iter``: TRT-LLM attention-DP balancing, as in
    ``closed_loop.aggregated``."""
    a, b = _affine(t_dec_small, t_dec_large, b_small, b_large)
    x = np.asarray(rate_per_rank, dtype=np.float64)
    rho = x * prefill_work_s
    denom = 1.0 - rho - b * x * (osl - 1)
    ok = denom > 0
    tpot = np.where(ok, (a + b) / np.where(ok, denom, 1.0), np.inf)
    held = balance_wait_s(
        adp_ranks, x * adp_ranks, np.where(ok, tpot, 0.0) * tokens_per_iter, adp_timeout_iters
    )
    queued = q * rho / np.maximum(1 - rho, 1e-12) * prefill_work_s
    wait = np.where(rho < 1, queued + held, np.inf)
    ttft = np.where(ok, ttft_overhead_s + t_own_prefill + wait, np.inf)
    batch = np.where(ok, x * (osl - 1) * tpot, np.inf)
    return {
        "ttft_s": ttft,
        "tpot_s": tpot,
        "decode_batch": batch,
        "stable": ok,
        "prefill_utilization": rho,
    }


def disaggregated_open(
    rate: np.ndarray,
    osl: np.ndarray,
    decode_ranks: np.ndarray,
    t_dec_small: np.ndarray,
    t_dec_large: np.ndarray,
    b_small: np.ndarray,
    b_large: np.ndarray,
    t_prefill: np.ndarray,
    prefill_capacity_rps: np.ndarray,
    kv_transfer_s: np.ndarray,
    ttft_overhead_s: np.ndarray,
    q: float,
    prefill_servers: np.ndarray | float = 1.0,
) -> dict[str, np.ndarray]:
    a, b = _affine(t_dec_small, t_dec_large, b_small, b_large)
    x = np.asarray(rate, dtype=np.float64)
    x_rank = x / decode_ranks
    denom = 1.0 - b * x_rank * (osl - 1)
    rho_p = x / prefill_capacity_rps
    ok = (denom > 0) & (rho_p < 1)
    tpot = np.where(ok, (a + b) / np.where(denom > 0, denom, 1.0), np.inf)
    # the pool's prefill servers (attention-DP ranks of its workers) queue as M/G/c
    wait = queue_wait(rho_p, t_prefill, q, prefill_servers)
    ttft = np.where(ok, ttft_overhead_s + t_prefill + kv_transfer_s + wait, np.inf)
    return {
        "ttft_s": ttft,
        "tpot_s": tpot,
        "decode_batch": np.where(ok, x_rank * (osl - 1) * tpot, np.inf),
        "stable": ok,
        "prefill_utilization": rho_p,
    }
