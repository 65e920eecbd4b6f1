"""TRT-LLM's attention-DP context balancing: how long a new request waits before its prefill.

With ``enable_attention_dp`` and ``attention_dp_config.enable_balance``, TRT-LLM's
scheduler holds context (prefill) requests back until every attention-DP rank has one, so
that all ranks prefill in the same iteration, or until a counter of held iterations
reaches ``timeout_iters`` (it also lets them through when some rank has no generation
request, which CUDA-graph padding keeps from happening while anything decodes). The
counter advances on every iteration that does not release context requests and restarts
when it does, so it runs whether or not a request is waiting.

A request arriving at a random point of that cycle therefore waits for the earlier of

- the counter's residual, uniform on [0, T] with T = ``timeout_iters`` x the iteration
  time, and
- the moment every other rank has a context request too: with requests spread over the
  ``dp`` ranks, ``dp - 1`` more arrivals, F = (dp - 1) / lambda at a total arrival rate
  lambda (taken at its mean),

E[min(U T, F)] = T / 2 when F >= T, else F - F^2 / (2 T).

TRT-LLM's own default is ``enable_balance: false`` (no wait); the public serving recipes
for DeepSeek-class models with attention DP set ``enable_balance: true, timeout_iters: 60,
batching_wait_iters: 0`` (e.g. the TRT-LLM DEP recipes aiconfigurator and InferenceMAX
run), which is how the measured TRT-LLM attention-DP rows were served.
"""

from __future__ import annotations

import numpy as np

# the DEP serving recipes' setting (attention_dp_config.timeout_iters)
RECIPE_TIMEOUT_ITERS = 60


def balance_cycle_and_fill_s(
    dp: np.ndarray | float,
    arrival_rate_per_s: np.ndarray | float,
    iteration_s: np.ndarray | float,
    timeout_iters: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """(T, F): the timeout cycle in seconds (0 where balancing is off or there is one
    rank) and the time for the other ranks to get a request (inf with no arrivals).

    ``dp``: attention-DP ranks of the worker; ``arrival_rate_per_s``: requests per second
    arriving at the whole worker; ``iteration_s``: one engine iteration (a decode step);
    ``timeout_iters``: 0 where balancing is off."""
    dp, rate, it, timeout = np.broadcast_arrays(
        *(
            np.asarray(v, dtype=np.float64)
            for v in (dp, arrival_rate_per_s, iteration_s, timeout_iters)
        )
    )
    t_cycle = np.where(dp > 1, np.maximum(timeout, 0.0) * np.maximum(it, 0.0), 0.0)
    fill = np.where(rate > 0, (dp - 1.0) / np.maximum(rate, 1e-12), np.inf)
    return t_cycle, fill


def balance_wait_s(
    dp: np.ndarray | float,
    arrival_rate_per_s: np.ndarray | float,
    iteration_s: np.ndarray | float,
    timeout_iters: np.ndarray | float,
) -> np.ndarray:
    """Mean seconds a context request is held by attention-DP balancing, E[min(U T, F)]
    (arguments as ``balance_cycle_and_fill_s``)."""
    return mean_hold_s(
        *balance_cycle_and_fill_s(dp, arrival_rate_per_s, iteration_s, timeout_iters)
    )


def mean_hold_s(t_cycle: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """E[min(U T, F)] for U uniform on [0, 1]: T / 2 when F >= T, else F - F^2 / 2T."""
    capped = t_cycle / 2.0
    filled = fill - fill**2 / np.maximum(2.0 * t_cycle, 1e-300)
    return np.where(t_cycle > 0, np.where(fill >= t_cycle, capped, filled), 0.0)


def balance_wait_quantile_s(
    p: float | np.ndarray, t_cycle: np.ndarray, fill: np.ndarray
) -> np.ndarray:
    """The p-quantile of the hold, min(U T, F) with U uniform: min(p T, F)."""
    return np.where(t_cycle > 0, np.minimum(np.asarray(p) * t_cycle, fill), 0.0)
