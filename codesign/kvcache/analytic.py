"""Analytic LRU hit-ratio model, precomputed once per trace, queried in microseconds.

`hit_curve` builds, for a grid of ``N`` (sessions sharing one cache), the interleaved
request stream exactly as `simulate` replays it (`schedule.replay_schedule`, same seed)
and computes the exact LRU stack distance of every block look-up in it (`stack`: Mattson's
stack algorithm, one vectorised pass per ``N`` at request granularity). The token-weighted
CDF of the distances is the hit ratio at every capacity at once, stored on a fine capacity
grid; a query interpolates linearly in capacity and in ``log N`` between grid rows
(vectorised over capacities). At the grid's ``N`` and capacities the table *is* the
block simulation's answer (single tier, no pinning). Between grid capacities (~1% apart)
the interpolation error is below 0.05 pp. Between grid ``N`` it is set by how unevenly the
replay's hit ratio moves with ``N`` (which sessions happen to overlap): up to ~2 pp on a
40-session Claude Code sample, less on larger traces; pass ``sessions_grid=[N]`` to
`hit_curve` for an exact curve at a given ``N``.

Tiers: with prefix-chained hashes an exclusive chain (victims cascade down, hits promote)
holds the ``C_1 + ... + C_k`` most recent blocks in tiers ``1..k`` and inclusive tier ``k``
the ``C_k`` most recent, so tier hit ratios are differences of the curve at cumulative
capacities (exclusive) or at the capacities (inclusive) — exact as well.

Round robin: a request goes to the next worker of a counter every session advances, so
with several sessions each request lands on an effectively random worker, and every
worker's cache sees all sessions but only a 1/W share of each session's requests: it holds
what the session's last visit to it cached, the context grown since then misses, and the
older that visit, the likelier its blocks were evicted (a long client gap anywhere in
between turns the cache over). `hit_curve(..., round_robin=W_grid)` replays that share —
one worker's stream, each request kept with probability 1/W (seeded) — through the same
exact stack distances, per W of the grid; `HitCurve.round_robin_hit_ratio` interpolates in
log W (the single cache is W = 1) and extrapolates past the grid. Against the block
simulation of all W workers, each request on a random one: within ~1 pp on 100 fleet
sessions; on small traces the one sampled worker's share of the requests adds a few pp of
noise at large W.

Not modelled: the ``pin_ttl_s`` tool-gap policy (pinning breaks the LRU stack order; it is
simulation-only), and ``N`` outside the grid (clipped to 1 .. 4096). For ``N`` beyond the
trace's sessions the replay, like the simulation, plays shifted, relabelled copies of the
sample's sessions (each lane a window of ``2 D / N`` of the session cycle of length ``D``),
so a larger ``N`` is modelled from the same sample, not extrapolated. Like the simulation,
a lane only warms up for one period ``D / N``: re-use older than that is lost, so at large
``N`` even an infinite cache stays below `HitCurve.ideal_hit_ratio` (the trace's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from codesign.errors import SpecError
from codesign.kvcache.delay import delayed_ramps, drop_at
from codesign.kvcache.ramps import Ramps
from codesign.kvcache.schedule import replay_schedule
from codesign.kvcache.stack import (
    TraceReuse,
    ideal_hit_tokens,
    stream_ramps,
    trace_reuse,
)
from codesign.workload.schema import Trace

# every N up to 16, then steps of 2^(1/4) (~19%) up to 4096
SESSIONS_GRID = tuple(range(1, 17)) + tuple(
    int(v) for v in np.unique(np.rint(16 * 2 ** (np.arange(1, 33) / 4)))
)
CAPACITY_POINTS = 2000  # geometric capacity grid (blocks); linear interpolation between
ROUND_ROBIN_WORKERS = (2, 4, 8, 16, 32)  # workers whose round-robin streams are replayed
DELAY_SESSIONS_GRID = tuple(2**k for k in range(13))  # N of the delayed replays
# The evaluator's curves average session orders (`hit_curve(arrangements=...)`) until they
# hold this many sessions between them. Measured on claude-code-fleet samples at 990K
# tokens and N = 4..32, the standard deviation over orders of one order's hit ratio is
# 1.1 pp with 64 sessions (2.0 pp 90 s late), 0.67 pp with 128 and 0.40 pp with 200
# (0.9 pp late): 200 sessions in one order are as steady as four orders of 64.
ARRANGED_SESSIONS, MAX_ARRANGEMENTS = 200, 4


@dataclass(frozen=True)
class HitCurve:
    """Hit ratio vs cache capacity and sessions per cache, for one trace (and model tier)."""

    tier: str
    block_size_tokens: int
    sessions_grid: np.ndarray  # (S,) increasing
    capacity_grid_tokens: np.ndarray  # (C,) increasing, starts at 0, whole blocks
    hit_table: np.ndarray  # (S, C) token-weighted hit ratio
    ideal_hit_ratio: float  # infinite cache, each session alone (the trace's own reuse)
    requests: int
    input_tokens: int
    # round robin over W workers: one worker's hit table per W (W, S, C); none: not built
    round_robin_workers: np.ndarray = field(default_factory=lambda: np.zeros(0))
    round_robin_table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    # squared hit lengths over squared input lengths (sums over the requests), the same
    # shapes: the share of the prompts' causal attention pairs the cache saves
    attention_table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    round_robin_attention_table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    input_sq_mean_tokens: float = 0.0  # mean squared input length of the requests
    # responses slower than the trace's (`delay`): the drop of both ratios per extra
    # seconds per response (D,) and sessions per cache (S_d,), (D, S_d, C) each; none:
    # not built
    delay_grid_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    delay_sessions_grid: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (S_d,)
    delay_drop_table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    delay_attention_drop_table: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))

    def prefill_pairs(self, attention_hit: np.ndarray | float) -> np.ndarray:
        """Mean causal (query, key) pairs a request's uncached tokens compute, at an
        attention hit ratio (`hit_ratio(..., attention=True)`): (E[L^2] - E[h^2]) / 2."""
        return (1.0 - np.asarray(attention_hit, dtype=float)) * self.input_sq_mean_tokens / 2.0

    def hit_ratio(
        self,
        capacity_tokens: np.ndarray | float,
        sessions_per_cache: np.ndarray | float = 1.0,
        delay_s: np.ndarray | float | None = None,
        attention: bool = False,
    ) -> np.ndarray:
        """Total hit ratio of caches of ``capacity_tokens`` shared by N sessions each
        (capacities, N and delays broadcast together).

        Capacities are floored to whole blocks (as the simulation does), then interpolated
        linearly on the capacity grid (held past its end), and linearly in log N between
        grid rows (N is clipped to the grid). ``delay_s``: seconds each response takes
        beyond the trace's server time (`delay`; ignored by a curve built without them).
        ``attention``: the attention hit ratio instead, the sum of squared hit lengths over
        the sum of squared input lengths (the share of the prompts' causal attention work
        the caches save, `prefill_pairs`).
        """
        if attention:
            table, drops = self.attention_table, self.delay_attention_drop_table
        else:
            table, drops = self.hit_table, self.delay_drop_table
        h = self._lookup(table[None], 0, capacity_tokens, sessions_per_cache)
        return self._delayed(h, drops, capacity_tokens, sessions_per_cache, delay_s)

    def _delayed(self, ratio, drops, capacity_tokens, sessions_per_cache, delay_s) -> np.ndarray:
        """``ratio`` less the drop at ``delay_s`` (none without a delay or its tables)."""
        if delay_s is None or self.delay_grid_s.size == 0 or not np.any(np.asarray(delay_s) > 0):
            return ratio
        drop = drop_at(
            self.delay_grid_s,
            drops,
            delay_s,
            lambda t: self._lookup(
                t[None], 0, capacity_tokens, sessions_per_cache, self.delay_sessions_grid
            ),
        )
        return np.clip(ratio - drop, 0.0, 1.0)

    def round_robin_hit_ratio(
        self,
        capacity_tokens: np.ndarray | float,
        sessions_per_cache: np.ndarray | float,
        workers: np.ndarray | float,
        delay_s: np.ndarray | float | None = None,
        attention: bool = False,
    ) -> np.ndarray:
        """Hit ratio of one of ``workers`` caches of ``capacity_tokens`` under round robin,
        each cache seeing all ``sessions_per_cache`` sessions (all broadcast together):
        linear in log W between the replayed worker counts (W = 1: the single cache),
        extrapolated past the last two, never below 0. ``attention``: the attention hit
        ratio instead (`hit_ratio`)."""
        if attention:
            one, per_w = self.attention_table, self.round_robin_attention_table
            drops = self.delay_attention_drop_table
        else:
            one, per_w, drops = self.hit_table, self.round_robin_table, self.delay_drop_table
        if self.round_robin_workers.size == 0:
            raise SpecError("this hit curve was built without round-robin streams")
        tables = np.concatenate([one[None], per_w])
        lg = np.log(np.r_[1.0, self.round_robin_workers])
        lw = np.log(np.maximum(np.asarray(workers, dtype=float), 1.0))
        k = np.clip(np.searchsorted(lg, lw, side="right") - 1, 0, lg.size - 2)
        f = (lw - lg[k]) / (lg[k + 1] - lg[k])
        lo = self._lookup(tables, k, capacity_tokens, sessions_per_cache)
        hi = self._lookup(tables, k + 1, capacity_tokens, sessions_per_cache)
        h = np.maximum((1 - f) * lo + f * hi, 0.0)
        # each worker's cache sees all N sessions: the single cache's drop at N
        return self._delayed(h, drops, capacity_tokens, sessions_per_cache, delay_s)

    def _lookup(
        self,
        tables: np.ndarray,
        k: np.ndarray | int,
        capacity_tokens: np.ndarray | float,
        sessions_per_cache: np.ndarray | float,
        sessions_grid: np.ndarray | None = None,
    ) -> np.ndarray:
        """``tables[k]`` (each (S, C) on this curve's grids) at the capacities and N:
        bilinear in (capacity, log N), vectorised over everything."""
        bs = self.block_size_tokens
        cap = np.floor(np.maximum(np.asarray(capacity_tokens, dtype=float), 0.0) / bs) * bs
        cap, n, k = np.broadcast_arrays(cap, np.asarray(sessions_per_cache, dtype=float), k)
        grid = self.capacity_grid_tokens
        sg = self.sessions_grid if sessions_grid is None else sessions_grid
        j = np.clip(np.searchsorted(grid, cap, side="right") - 1, 0, grid.size - 2)
        fc = np.clip((cap - grid[j]) / (grid[j + 1] - grid[j]), 0.0, 1.0)
        if sg.size == 1:
            return tables[k, 0, j] * (1 - fc) + tables[k, 0, j + 1] * fc
        n = np.clip(n, sg[0], sg[-1])
        i = np.clip(np.searchsorted(sg, n, side="right") - 1, 0, sg.size - 2)
        f = (np.log(n) - np.log(sg[i])) / (np.log(sg[i + 1]) - np.log(sg[i]))
        lo = tables[k, i, j] * (1 - fc) + tables[k, i, j + 1] * fc
        hi = tables[k, i + 1, j] * (1 - fc) + tables[k, i + 1, j + 1] * fc
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


def _tier_requests(trace: Trace, tier: str | None) -> np.ndarray | None:
    if tier is None:
        return None
    code = trace.tier_code(tier)
    if code < 0:
        raise SpecError(f"unknown model tier {tier!r} (known: {', '.join(trace.meta.tiers)})")
    return trace.tier == code


def _capacity_grid(max_blocks: int) -> np.ndarray:
    """0, then whole-block capacities up to ``max_blocks`` (geometric, ~1% steps)."""
    top = max(int(max_blocks), 1)
    g = np.unique(np.rint(np.geomspace(1, top, CAPACITY_POINTS)).astype(np.int64))
    return np.r_[0, g, top].astype(float) if g[-1] != top else np.r_[0, g].astype(float)


def arrangements_for(sessions: int) -> int:
    """Session arrangements a curve of a trace with ``sessions`` sessions averages:
    enough that they hold `ARRANGED_SESSIONS` sessions between them, at most
    `MAX_ARRANGEMENTS`."""
    return int(min(MAX_ARRANGEMENTS, max(1, -(-ARRANGED_SESSIONS // max(int(sessions), 1)))))


def hit_curve(
    trace: Trace,
    tier: str | None = None,
    seed: int = 0,
    sessions_grid: Sequence[int] | None = None,
    round_robin: Sequence[int] = (),
    delays_s: Sequence[float] = (),
    arrangements: int = 1,
) -> HitCurve:
    """Precompute the model of ``trace`` (requests of model tier ``tier``, or all).

    ``sessions_grid``: the N for which the stream is built exactly (default
    `SESSIONS_GRID`); pass the N you will query to make the model exact there.
    ``round_robin``: worker counts W (> 1) whose round-robin stream is replayed too (one
    worker's: each request kept with probability 1 / W), e.g. `ROUND_ROBIN_WORKERS`.
    ``delays_s``: extra seconds per response whose replays are built too (`delay`, e.g.
    `DELAY_GRID_S`).
    ``arrangements``: session orders (seeds ``seed``, ``seed + 1``, ...) whose tables (hit,
    attention, round-robin, delay drops) are averaged (1: the curve is the simulation's at
    ``seed``, exactly). Which sessions a replay happens to overlap moves a small trace's
    hit ratio by a few points from one N to the next, and not monotonically (64 fleet
    sessions at 990K tokens: 0.942 at N = 8, 0.953 at N = 10); the mean over orders is
    the expectation a deployment faces.
    """
    if int(arrangements) != arrangements or arrangements < 1:
        raise SpecError(f"arrangements must be an integer >= 1, got {arrangements!r}")
    if not trace.has_hashes:
        raise SpecError("a hit-ratio curve needs block hashes; this trace has none")
    grid_n = np.unique(
        np.asarray(SESSIONS_GRID if sessions_grid is None else sessions_grid, dtype=np.int64)
    )
    if grid_n.size == 0 or grid_n[0] < 1:
        raise SpecError("sessions_grid must hold integers >= 1")
    rr = np.unique(np.asarray(round_robin, dtype=np.int64))
    if rr.size and rr[0] < 2:
        raise SpecError("round_robin worker counts must be integers >= 2")
    mask = _tier_requests(trace, tier)
    reuse = trace_reuse(trace, mask, seed)
    orders = [(seed, reuse)] + [
        (seed + k, trace_reuse(trace, mask, seed + k)) for k in range(1, int(arrangements))
    ]
    sets = []  # per order: the single cache's streams, then one per round-robin W
    for s, r in orders:
        streams = [_ramps(trace, r, grid_n, s, mask)]
        # one draw per request, so that W = 4's stream is a random half of W = 2's
        keep = np.random.default_rng([s, 1]).random(trace.n_requests)
        for w in rr:
            m = (keep < 1.0 / w) & (True if mask is None else mask)
            if not m.any():  # too few requests to sample: the last stream stands in
                streams.append(streams[-1])
                continue
            streams.append(_ramps(trace, trace_reuse(trace, m, s), grid_n, s, m))
        sets.append(streams)
    # the drops on every other power of two of N (they move smoothly with N)
    delays = np.asarray(delays_s, dtype=np.float64)
    delay_n = grid_n[np.isin(grid_n, DELAY_SESSIONS_GRID) | (grid_n == grid_n[-1])]
    if delays.size == 0:
        delay_n = grid_n[:0]
    lates = [delayed_ramps(trace, r, mask, delay_n, s, delays) for s, r in orders]
    bs = trace.meta.block_size_tokens
    every = [per_n for streams in sets + lates for per_n in streams]
    top = max(r.max_distance for s in every for r in s)
    cap_blocks = _capacity_grid(top + 1)
    shape = (delays.size, delay_n.size, cap_blocks.size)
    drops, attn_drops = np.zeros(shape), np.zeros(shape)
    at = np.searchsorted(grid_n, delay_n)
    for k, (streams, late) in enumerate(zip(sets, lates, strict=True)):
        hit_k, attn_k = ramp_tables(streams, cap_blocks)
        if k == 0:
            tables, attn = hit_k, attn_k
        else:  # the mean over the orders
            tables += (hit_k - tables) / (k + 1)
            attn += (attn_k - attn) / (k + 1)
        if late:
            hit_l, attn_l = ramp_tables(late, cap_blocks)
            drops += (hit_k[0][at][None] - hit_l - drops) / (k + 1)
            attn_drops += (attn_k[0][at][None] - attn_l - attn_drops) / (k + 1)
    rows = np.arange(trace.n_requests) if mask is None else np.flatnonzero(mask)
    total_in = int(trace.input_tokens[rows].sum())
    inp = trace.input_tokens[rows].astype(float)
    ideal = ideal_hit_tokens(reuse) / total_in if total_in else 0.0
    return HitCurve(
        tier=tier or "all",
        block_size_tokens=bs,
        sessions_grid=grid_n.astype(float),
        capacity_grid_tokens=cap_blocks * bs,
        hit_table=tables[0],
        ideal_hit_ratio=ideal,
        requests=int(rows.size),
        input_tokens=total_in,
        round_robin_workers=rr.astype(float),
        round_robin_table=tables[1:],
        attention_table=attn[0],
        round_robin_attention_table=attn[1:],
        input_sq_mean_tokens=float((inp * inp).mean()) if inp.size else 0.0,
        delay_grid_s=delays,
        delay_sessions_grid=delay_n.astype(float),
        delay_drop_table=drops,
        delay_attention_drop_table=attn_drops,
    )


def ramp_tables(
    streams: list[list[Ramps]], cap_blocks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hit and attention-hit tables (streams, N, capacities) of the streams' ramps."""
    tables = np.zeros((len(streams), len(streams[0]) if streams else 0, cap_blocks.size))
    attn = np.zeros_like(tables)
    for w, ramps in enumerate(streams):
        for k, r in enumerate(ramps):
            if r.total_tokens > 0:
                tables[w, k] = np.clip(r.hit_tokens(cap_blocks) / r.total_tokens, 0.0, 1.0)
                sq = r.hit_sq_tokens(cap_blocks) / r.total_sq_tokens
                attn[w, k] = np.clip(sq, 0.0, 1.0)
    # guard float round-off
    return np.maximum.accumulate(tables, axis=2), np.maximum.accumulate(attn, axis=2)


def _ramps(
    trace: Trace, reuse: TraceReuse, grid_n: np.ndarray, seed: int, mask: np.ndarray | None
) -> list[Ramps]:
    """The stream of the ``mask``ed requests at every N of the grid, as ramps."""
    return [stream_ramps(reuse, replay_schedule(trace, int(n), seed, mask)) for n in grid_n]
