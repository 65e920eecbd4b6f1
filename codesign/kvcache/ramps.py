"""Hits of a replayed stream as ramps, summed at any cache capacities in one sort.

A ramp is a run of blocks at consecutive LRU stack distances ``start .. start + length - 1``
(`stack.stream_ramps` builds them). A block hits a cache of ``C`` blocks iff its distance
is ``< C``, so at capacity ``C`` the first ``m = clip(C - start, 0, length)`` blocks of a
ramp hit.

Two sums per capacity:

* hit tokens: ``weight`` tokens per block, ``weight x m`` per ramp;
* hit tokens squared: a request's hits are its leading tokens, so its squared hit length
  is the sum over its hit blocks of ``t (2 p + t)`` (a block of ``t`` tokens after ``p``
  earlier tokens: ``(p + t)^2 - p^2``). Along a ramp of full blocks ``p`` grows by the
  block size per block, so the block terms are linear in the block's index ``k``,
  ``a + b k``, and a ramp adds ``a m + b m (m - 1) / 2``. The squares weigh the prefill's
  causal attention: a request of ``L`` tokens with ``h`` cached computes
  ``(L^2 - h^2) / 2`` (query, key) pairs, so the mean of ``h^2`` gives the exact mean
  attention work of the uncached tokens, which the mean ``h`` and mean ``L`` alone
  understate when long contexts are the ones that miss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ramps:
    """Hits of the measured requests as ramps: ``weight`` tokens per block at distances
    ``start .. start + length - 1``; block ``k`` of a ramp adds ``sq_a + sq_b k`` to its
    request's squared hit length. ``total_tokens`` is the measured input,
    ``total_sq_tokens`` the sum of its requests' squared lengths."""

    start: np.ndarray
    length: np.ndarray
    weight: np.ndarray
    total_tokens: float
    sq_a: np.ndarray
    sq_b: np.ndarray
    total_sq_tokens: float

    @property
    def max_distance(self) -> int:
        return int((self.start + self.length).max(initial=0))

    def hit_tokens(self, capacity_blocks: np.ndarray) -> np.ndarray:
        """Hit tokens of LRU caches of ``capacity_blocks`` (hit iff distance < capacity)."""
        c = np.asarray(capacity_blocks, dtype=float)
        return _relu_sum(self.start, self.weight, c) - _relu_sum(
            self.start + self.length, self.weight, c
        )

    def hit_sq_tokens(self, capacity_blocks: np.ndarray) -> np.ndarray:
        """Sum over the measured requests of their squared hit tokens, per capacity.

        ``q(min(x, L))`` with ``q(m) = a m + b m (m - 1) / 2`` and ``x = relu(C - start)``
        equals ``q(x) - q'(relu(C - start - L))``, ``q'`` having ``a + b L`` for ``a``."""
        c = np.asarray(capacity_blocks, dtype=float)
        end = self.start + self.length
        a_end = self.sq_a + self.sq_b * self.length
        return _quad_relu_sum(self.start, self.sq_a, self.sq_b, c) - _quad_relu_sum(
            end, a_end, self.sq_b, c
        )


def _relu_sum(a: np.ndarray, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """sum_i w_i * max(c - a_i, 0) for every c."""
    o = np.argsort(a, kind="stable")
    a_s = a[o].astype(float)
    cw = np.r_[0.0, np.cumsum(w[o].astype(float))]
    cwa = np.r_[0.0, np.cumsum(w[o] * a_s)]
    k = np.searchsorted(a_s, c, side="left")
    return c * cw[k] - cwa[k]


def _quad_relu_sum(s: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """sum_i [a_i x_i + b_i x_i (x_i - 1) / 2], x_i = max(c - s_i, 0), for every c:
    expanded in powers of c over the s_i < c (prefix sums in s order)."""
    o = np.argsort(s, kind="stable")
    s_s, a_s, b_s = s[o].astype(float), a[o].astype(float), b[o].astype(float)

    def csum(v: np.ndarray) -> np.ndarray:
        return np.r_[0.0, np.cumsum(v)]

    ca, cas = csum(a_s), csum(a_s * s_s)
    cb, cbs, cbss = csum(b_s), csum(b_s * s_s), csum(b_s * s_s * s_s)
    k = np.searchsorted(s_s, c, side="left")
    lin = c * ca[k] - cas[k]
    # sum b ((c - s)^2 - (c - s)) / 2
    quad = 0.5 * (c * c * cb[k] - 2.0 * c * cbs[k] + cbss[k] - c * cb[k] + cbs[k])
    return lin + quad
