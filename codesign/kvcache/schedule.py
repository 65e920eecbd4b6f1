"""Interleave a trace's sessions into the request stream one shared cache sees.

Model: ``N = sessions_per_cache`` sessions are active at every moment; when one ends the
next starts (a closed system in steady state). Sessions are shuffled (seeded) and laid end
to end on a cycle of length ``D = sum of session durations``; lane ``i`` plays the cycle
from position ``i * P`` (``P = D / N``) for two periods. Every lane's copy of a session
gets its own block ids (a copy is a different user), the first period warms the cache and
only the second is measured, so each request of the trace is measured exactly once, in a
warm, stationary cache — the regime the analytic model (`analytic.py`) describes. A lane
starts earlier when a measured request's previous turn (its agent's previous request,
which re-sent the context it extends) lies before its first period (a period shorter than
a gap between turns: few sessions, many lanes). Warming up from the session's start
instead replayed a single-stream trace (Mooncake as one session) N times over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.workload.schema import Trace

I64 = np.int64


def session_spans(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(first arrival, duration) per session; duration ends at the last response (>= 1 s)."""
    sess = trace.req_session
    end = trace.arrival_s + np.nan_to_num(trace.server_s)
    first = np.full(trace.n_sessions, np.inf)
    last = np.full(trace.n_sessions, -np.inf)
    np.minimum.at(first, sess, trace.arrival_s)
    np.maximum.at(last, sess, end)
    has = np.isfinite(first)
    first = np.where(has, first, 0.0)
    duration = np.where(has, np.maximum(last - first, 1.0), 0.0)
    return first, duration


def cycle_positions(trace: Trace, seed: int = 0) -> tuple[np.ndarray, float]:
    """Position (s) of every request on the shuffled session cycle, and the cycle length."""
    first, duration = session_spans(trace)
    order = np.random.default_rng(seed).permutation(trace.n_sessions)
    offset = np.zeros(trace.n_sessions)
    offset[order] = np.concatenate(([0.0], np.cumsum(duration[order])[:-1]))
    sess = trace.req_session
    pos = offset[sess] + (trace.arrival_s - first[sess])  # a session starts at its offset, exactly
    return pos, float(duration.sum())


def _previous_turn(trace: Trace, idx: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per request of ``idx`` (sorted by position ``p``): the position of its agent's
    previous request among them, which re-sent (and so last touched) the context it
    extends; for an agent's first request its session's previous request (a shared system
    prompt); for a session's first request its own position."""
    sess, agent = trace.req_session[idx], trace.req_agent[idx]
    prev = p.copy()
    if p.size == 0:
        return prev
    for key in (sess, agent):  # the agent's previous request overrides the session's
        o = np.lexsort((np.arange(p.size), key))  # by key, then by position (p is sorted)
        same = np.r_[False, key[o][1:] == key[o][:-1]]
        before = np.r_[p[o][:1], p[o][:-1]]
        prev[o[same]] = before[same]
    return prev


@dataclass(frozen=True)
class Replay:
    """The stream of (request, copy) pairs one cache sees, in wall-clock order."""

    request: np.ndarray  # index into the trace
    copy: np.ndarray  # copy number (lane x rounds + round): block ids are offset by it
    wall_s: np.ndarray
    measured: np.ndarray  # bool: in the second period (warm cache)
    period_s: float
    sessions_per_cache: int


def lane_coordinates(
    trace: Trace, n: int, seed: int = 0, requests: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """The requests (of the mask ``requests``) in cycle order, their positions and their
    previous turns' in periods of the cycle (``n`` periods), the period (s) and the rounds
    a lane unrolls: lane i measures [i + 1, i + 2) of the unrolled cycle (round k adds
    k n); integer boundaries, so every request falls in exactly one lane's window."""
    pos, cycle = cycle_positions(trace, seed)
    idx = np.arange(trace.n_requests) if requests is None else np.flatnonzero(requests)
    order = np.argsort(pos[idx], kind="stable")
    idx, p = idx[order], pos[idx][order]
    scale = n / cycle if cycle > 0 else 0.0
    rounds = int(np.ceil(2.0 / n)) + 2 if cycle > 0 else 1
    return idx, p * scale, _previous_turn(trace, idx, p) * scale, cycle / n, rounds


def replay_schedule(
    trace: Trace, sessions_per_cache: int, seed: int = 0, requests: np.ndarray | None = None
) -> Replay:
    """Lanes of the cycle (see module docstring); ``requests`` restricts to a mask (a tier)."""
    n = int(sessions_per_cache)
    if n < 1:
        raise ValueError("sessions_per_cache must be >= 1")
    idx, u, u_start, period, rounds = lane_coordinates(trace, n, seed, requests)
    # (lane, round) windows, lane-major: round k shifts the window, not the positions
    # (u + k n could round across an integer boundary and leave a request in no window)
    lane = np.repeat(np.arange(n, dtype=I64), rounds)
    k = np.tile(np.arange(rounds, dtype=I64), n)
    w0 = (lane + 1.0) - k * n  # integer window [w0, w0 + 1) of the unrolled cycle
    m0 = np.searchsorted(u, w0, side="left")
    b = np.searchsorted(u, w0 + 1.0, side="left")
    # warm up from the earliest previous turn of a measured request, so that the turn
    # that last touched its context was played (with few sessions, e.g. one session
    # replayed by many lanes, a period is shorter than a session and a lane starting
    # mid-session would miss the context); the windows are disjoint runs of u
    first = np.full(lane.size, np.inf)
    full = np.flatnonzero(b > m0)
    if full.size:
        cuts = np.ravel(np.column_stack((m0[full], b[full])))
        first[full] = np.minimum.reduceat(np.r_[u_start, np.inf], cuts)[::2]
    # the earliest start in each round's own units (exact for its own sessions)
    f = first.reshape(n, rounds)
    shift = (np.arange(rounds)[None, :] - np.arange(rounds)[:, None]) * float(n)  # [k, j]
    other = f[:, None, :] + shift[None]
    other[:, np.arange(rounds), np.arange(rounds)] = np.inf
    lo = np.minimum(np.minimum(lane.astype(float) - k * n, first), other.min(axis=2).ravel())
    a = np.searchsorted(u, lo, side="left")
    live = np.flatnonzero(b > a)
    if not live.size:
        z = np.zeros(0, dtype=I64)
        return Replay(z, z, np.zeros(0), np.zeros(0, bool), period, n)
    count = (b - a)[live]
    piece = np.repeat(live, count)
    t = np.arange(int(count.sum()), dtype=I64) - np.repeat(np.cumsum(count) - count, count)
    t += a[piece]  # position in the sorted requests
    req = idx[t]
    cp = lane[piece] * rounds + k[piece]
    wall = (u[t] + k[piece] * n - lane[piece]) * period
    measured = t >= m0[piece]
    o = np.lexsort((cp, wall))
    return Replay(req[o], cp[o], wall[o], measured[o], period, n)
