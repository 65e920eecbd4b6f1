"""Analytic LRU hit-ratio model, precomputed once per trace, queried in microseconds.

For a block access the LRU stack distance (distinct blocks touched since its previous
access) decides a hit: hit iff distance < capacity in blocks. With ``N`` sessions sharing
the cache (the steady state `schedule.replay_schedule` simulates) the distance splits into

* the session's own part, from the trace: ``j`` (the blocks before it in the previous
  request, touched after it because requests touch tail-first) plus the new blocks the
  session introduced in between (sub-agents, a compacted branch);
* the other ``N - 1`` sessions' part, a characteristic-time (Che-style) estimate:
  ``(N - 1) * w(dt)``, with ``w(dt)`` the mean number of distinct blocks one session
  touches in a window ``dt`` (its working-set function, from the gap and footprint
  distribution: ``w(T) = (sum over re-accesses of min(age, T) + U * T) / D``).

One pass gives, for a grid of ``N``, the token-weighted hit ratio on a grid of capacities;
a query interpolates (log N, capacity) — vectorised over capacities. Tiers are differences
of the curve at cumulative capacities (exclusive) or at the capacities (inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from codesign.errors import SpecError
from codesign.kvcache.schedule import cycle_positions
from codesign.workload.prefix import prev_in_groups
from codesign.workload.schema import Trace, gather_segments, segment_ids

I64 = np.int64


SESSIONS_GRID = np.unique(np.round(np.geomspace(1, 4096, 40))).astype(float)
MAX_SAMPLES = 400_000  # block accesses kept for the curve (uniform sample)
FOOTPRINT_SAMPLES = 200_000  # random instants used for the other sessions' footprint
EXACT_SUM_MAX_N = 32  # sum N-1 sampled footprints up to here, a normal law beyond


@dataclass(frozen=True)
class HitCurve:
    """Hit ratio vs cache capacity and sessions per cache, for one trace (and model tier)."""

    tier: str
    block_size_tokens: int
    sessions_grid: np.ndarray  # (S,) increasing
    capacity_grid_tokens: np.ndarray  # (C,) increasing, starts at 0
    hit_table: np.ndarray  # (S, C) token-weighted hit ratio
    ideal_hit_ratio: float  # infinite cache
    requests: int
    input_tokens: int

    def hit_ratio(
        self, capacity_tokens: np.ndarray | float, sessions_per_cache: float = 1.0
    ) -> np.ndarray:
        """Total hit ratio of caches of ``capacity_tokens`` shared by N sessions each.

        Linear in capacity, linear in log N between grid points (N is clipped to the grid).
        """
        cap = np.asarray(capacity_tokens, dtype=float)
        ln = np.log(
            np.clip(float(sessions_per_cache), self.sessions_grid[0], self.sessions_grid[-1])
        )
        lg = np.log(self.sessions_grid)
        i = int(np.clip(np.searchsorted(lg, ln) - 1, 0, max(lg.size - 2, 0)))
        if lg.size == 1:
            return np.interp(cap, self.capacity_grid_tokens, self.hit_table[0])
        f = (ln - lg[i]) / (lg[i + 1] - lg[i])
        lo = np.interp(cap, self.capacity_grid_tokens, self.hit_table[i])
        hi = np.interp(cap, self.capacity_grid_tokens, self.hit_table[i + 1])
        return (1 - f) * lo + f * hi

    def tier_hit_ratios(
        self,
        capacities_tokens: np.ndarray,
        sessions_per_cache: float = 1.0,
        mode: Literal["exclusive", "inclusive"] = "exclusive",
    ) -> np.ndarray:
        """Per-tier hit ratios; ``capacities_tokens[..., k]`` is tier k (fastest first)."""
        caps = np.asarray(capacities_tokens, dtype=float)
        if mode == "exclusive":
            cum = np.cumsum(caps, axis=-1)
        else:
            cum = np.maximum.accumulate(caps, axis=-1)
        h = self.hit_ratio(cum, sessions_per_cache)
        return np.diff(h, axis=-1, prepend=0.0)


def _tier_requests(trace: Trace, tier: str | None) -> np.ndarray:
    if tier is None:
        return np.ones(trace.n_requests, dtype=bool)
    code = trace.tier_code(tier)
    if code < 0:
        raise SpecError(f"unknown model tier {tier!r} (known: {', '.join(trace.meta.tiers)})")
    return trace.tier == code


def _other_session_footprints(
    pos_s: np.ndarray, blocks: np.ndarray, cycle_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(age, blocks) of another session's latest request, seen at random instants.

    Another session pushes a block down the LRU stack by the blocks of its requests made
    since the block's last access; with prefix-chained requests that is about the blocks
    of its latest request, when that request is younger than the reuse gap.
    """
    if pos_s.size == 0 or cycle_s <= 0:
        return np.zeros(1), np.zeros(1)
    order = np.argsort(pos_s, kind="stable")
    p, b = pos_s[order], blocks[order].astype(float)
    u = rng.uniform(0.0, cycle_s, FOOTPRINT_SAMPLES)
    k = np.searchsorted(p, u, side="right") - 1  # latest request at or before u (cyclic)
    age = np.where(k >= 0, u - p[np.maximum(k, 0)], u + cycle_s - p[-1])
    return age, b[k]  # k = -1 wraps to the last request of the cycle


def _hit_table(
    own: np.ndarray,
    dt: np.ndarray,
    w_tok: np.ndarray,
    total_in: int,
    age_o: np.ndarray,
    size_o: np.ndarray,
    bs: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Hit ratio on (sessions grid) x (capacity grid): hit iff own + others < capacity."""
    o = np.argsort(age_o)
    a_sorted, n_sorted = age_o[o], size_o[o]
    cum_n = np.r_[0.0, np.cumsum(n_sorted)] / age_o.size
    cum_n2 = np.r_[0.0, np.cumsum(n_sorted**2)] / age_o.size
    k = np.searchsorted(a_sorted, dt, side="left")
    mean1 = cum_n[k]  # E[blocks pushed by one other session within dt]
    var1 = np.maximum(cum_n2[k] - mean1**2, 0.0)
    max_blocks = float(own.max(initial=0) + (SESSIONS_GRID[-1] - 1) * size_o.max(initial=0))
    cap_grid = np.r_[0.0, np.geomspace(bs, bs * (max_blocks + 2), 600)]
    cap_blocks = np.floor(cap_grid / bs)
    table = np.zeros((SESSIONS_GRID.size, cap_grid.size))
    others = np.zeros_like(own)
    drawn = 0
    for i, n in enumerate(SESSIONS_GRID):
        m = int(n) - 1
        if n <= EXACT_SUM_MAX_N:
            while drawn < m:  # add one more sampled session (sums are nested over N)
                j = rng.integers(0, age_o.size, own.size)
                others += np.where(age_o[j] < dt, size_o[j], 0.0)
                drawn += 1
            dist = own + others
        else:
            z = rng.standard_normal(own.size)
            dist = own + np.maximum(m * mean1 + np.sqrt(m * var1) * z, 0.0)
        order = np.argsort(dist, kind="stable")
        cum = np.r_[0.0, np.cumsum(w_tok[order])]
        kk = np.searchsorted(dist[order], cap_blocks, side="left")  # hit iff distance < C
        table[i] = cum[kk] / total_in if total_in else 0.0
    return cap_grid, table


def hit_curve(trace: Trace, tier: str | None = None, seed: int = 0) -> HitCurve:
    """Precompute the model of ``trace`` (requests of model tier ``tier``, or all)."""
    if not trace.has_hashes:
        raise SpecError("a hit-ratio curve needs block hashes; this trace has none")
    bs = trace.meta.block_size_tokens
    rows = np.flatnonzero(_tier_requests(trace, tier))
    counts = trace.blocks_per_request[rows]
    offsets = np.zeros(rows.size + 1, dtype=I64)
    np.cumsum(counts, out=offsets[1:])
    flat = trace.hash_ids[gather_segments(trace.hash_offsets, rows)]
    req = segment_ids(offsets)  # request position in ``rows`` of every block
    sess = trace.req_session[rows]
    if trace.meta.hash_scope == "session" and rows.size:
        starts = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]])
        bounds = np.r_[offsets[starts], offsets[-1]]
    else:
        bounds = np.array([0, flat.size], dtype=I64)
    prev = prev_in_groups(flat, bounds)
    t_req = trace.arrival_s[rows]
    inp = trace.input_tokens[rows]
    pos = np.arange(flat.size, dtype=I64) - offsets[req]
    tok = np.clip(inp[req] - pos * bs, 0, bs).astype(float)
    reacc = prev >= 0
    reacc[reacc] = req[prev[reacc]] < req[reacc]
    # new blocks introduced per request, and their running total (exclusive prefix sum)
    new_per_req = np.bincount(req[~reacc], minlength=rows.size)
    new_before = np.r_[0, np.cumsum(new_per_req)]
    r_now = req[reacc]
    r_prev = req[prev[reacc]]
    own = pos[reacc] + (new_before[r_now] - new_before[r_prev + 1])
    dt = t_req[r_now] - t_req[r_prev]
    w_tok = tok[reacc]
    pos_cycle, cycle_s = cycle_positions(trace, seed)
    total_in = int(inp.sum())
    ideal = float(w_tok.sum() / total_in) if total_in else 0.0
    rng = np.random.default_rng(seed)
    if own.size > MAX_SAMPLES:  # a uniform sample keeps the curve to ~0.1 pp
        pick = rng.choice(own.size, MAX_SAMPLES, replace=False)
        scale = own.size / MAX_SAMPLES
        own, dt, w_tok = own[pick], dt[pick], w_tok[pick] * scale
    age_o, size_o = _other_session_footprints(pos_cycle[rows], counts, cycle_s, rng)
    cap_grid, table = _hit_table(own.astype(float), dt, w_tok, total_in, age_o, size_o, bs, rng)
    table[:, -1] = ideal
    return HitCurve(
        tier=tier or "all",
        block_size_tokens=bs,
        sessions_grid=SESSIONS_GRID.copy(),
        capacity_grid_tokens=cap_grid,
        hit_table=table,
        ideal_hit_ratio=ideal,
        requests=int(rows.size),
        input_tokens=total_in,
    )
