"""Speculative decoding (MTP or EAGLE-style drafts) in expectation.

With draft length k and a per-token acceptance probability alpha (drafts accepted
left to right until the first rejection, plus the verifier's own token), one verify step
yields E = (1 - alpha^(k+1)) / (1 - alpha) tokens per sequence (Leviathan et al., 2023).
A verify step runs k+1 tokens per sequence through the target model (the KV cache is
read once); each draft token costs one draft-model (MTP: one extra layer) decode pass.
Time per output token = (t_verify + k t_draft) / E.
"""

from __future__ import annotations

import numpy as np


def expected_tokens_per_step(k: np.ndarray | float, alpha: np.ndarray | float) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    a = np.clip(np.asarray(alpha, dtype=np.float64), 0.0, 1.0 - 1e-12)
    return (1.0 - a ** (k + 1.0)) / (1.0 - a)


def speculative_time_per_token(
    t_verify: np.ndarray, t_draft: np.ndarray, k: np.ndarray | float, alpha: np.ndarray | float
) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    return (t_verify + k * t_draft) / expected_tokens_per_step(k, alpha)
