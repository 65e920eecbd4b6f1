"""Hit ratios when the deployment answers more slowly than the trace's server did.

A request's reuse distance is the KV the other sessions touch between its session's two
turns, and that window holds the session's own response time. Slower responses stretch
every session's turns while the client gaps (tool runs, humans) stay as recorded, so
sessions in long gaps come back within the window and more distinct contexts pass between
turns: the hit ratio falls, the prefill work rises, responses slow further. Near a cache's
working set this feedback can settle in a second, thrashing steady state (LRU collapse).

`delayed` retimes the trace with every response ``delay_s`` longer: each request is
issued as the simulator's replay plan issues it (`simulate.plan`: an agent's next request
a recorded client gap after its previous response, sub-agents after their anchor, a
parent after its sub-agents join), so a request moves by the delay times the responses on
its critical path. Sessions lie end to end on the replay's cycle (`schedule`), so their
requests keep their ranks and the trace's reuse structure serves every delay; only the
lanes' interleaving moves. The replays are the exact LRU stream model's (`stack`), and
`HitCurve` keeps their *drop* from the undelayed one per delay, sessions per cache (powers
of two) and capacity, linear in the delay from 0 through the grid and held past its end.
"""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import numpy as np

from codesign.kvcache.ramps import Ramps
from codesign.kvcache.schedule import replay_schedule
from codesign.kvcache.stack import TraceReuse, stream_ramps
from codesign.workload.schema import Trace

DELAY_GRID_S = (10.0, 30.0, 90.0, 270.0, 810.0, 2430.0)  # extra seconds per response


def issue_times(trace: Trace, response_s: np.ndarray, plan=None) -> np.ndarray:
    """When each request is issued if each takes ``response_s``, by the replay plan
    (``plan``: the trace's, built here when not given; requests in recorded arrival
    order: every dependency arrived earlier)."""
    if plan is None:
        from codesign.simulate.plan import build_plan  # the simulator's replay rules

        plan = build_plan(trace)
    n = trace.n_requests
    prev = np.full(n, -1, dtype=np.int64)
    nxt = np.asarray(plan.next_req, dtype=np.int64)
    has = nxt >= 0
    prev[nxt[has]] = np.flatnonzero(has)
    sess = trace.req_session
    s_first = np.full(trace.n_sessions, np.inf)
    np.minimum.at(s_first, sess, trace.arrival_s)
    issue, end = np.zeros(n), np.zeros(n)
    agent_end: dict[int, float] = {}
    resp = np.asarray(response_s, dtype=np.float64).tolist()
    for i in np.argsort(trace.arrival_s, kind="stable").tolist():
        a, p = plan.req_agent[i], int(prev[i])
        if p < 0:
            anchor = plan.anchor[a]
            start = s_first[sess[i]] if anchor < 0 else end[anchor]
            t = start + plan.spawn_delay_s[a]
        elif kids := plan.children.get(p):
            t = max(max(agent_end[k] for k in kids) + plan.join_slack_s[i], end[p])
        else:
            t = end[p] + plan.think_s[i]
        issue[i], end[i] = t, t + resp[i]
        agent_end[a] = max(agent_end.get(a, -np.inf), end[i])
    return issue


def delayed_traces(trace: Trace, delays_s: np.ndarray | list[float]) -> list[Trace]:
    """The trace as replayed with every response ``delay_s`` longer, per delay (the
    replay plan and the undelayed issue times built once for all). Each session keeps
    its order of requests (parallel agents that would swap places stay in the recorded
    order), so its requests keep their places in the session cycle (`schedule`): only the
    lanes' interleaving moves, and the trace's reuse structure (`stack.trace_reuse`)
    serves the delayed replays as it is."""
    from codesign.simulate.plan import build_plan  # the simulator's replay rules

    plan = build_plan(trace)
    server = np.nan_to_num(trace.server_s.astype(np.float64))
    base = issue_times(trace, server, plan)
    # requests are stored by session, then arrival: a running maximum within a session
    sess = trace.req_session
    start = np.r_[True, sess[1:] != sess[:-1]] if sess.size else np.zeros(0, bool)
    bounds = np.r_[np.flatnonzero(start), sess.size].tolist()
    out = []
    for delay in np.asarray(delays_s, dtype=np.float64).tolist():
        arrival = trace.arrival_s + (issue_times(trace, server + delay, plan) - base)
        for lo, hi in pairwise(bounds):
            arrival[lo:hi] = np.maximum.accumulate(arrival[lo:hi])
        out.append(
            dataclasses.replace(trace, arrival_s=arrival, server_s=server + delay, _cache={})
        )
    return out


def delayed(trace: Trace, delay_s: float) -> Trace:
    """The trace as replayed with every response ``delay_s`` longer (`delayed_traces`)."""
    return delayed_traces(trace, [delay_s])[0]


def delayed_ramps(
    trace: Trace,
    reuse: TraceReuse,
    mask: np.ndarray | None,
    grid_n: np.ndarray,
    seed: int,
    delays_s: np.ndarray,
) -> list[list[Ramps]]:
    """Per delay, the ramps of the delayed replay at every N of ``grid_n``; they use the
    trace's reuse structure ``reuse`` (the sessions keep their ranks)."""
    return [
        [stream_ramps(reuse, replay_schedule(late, int(n), seed, mask)) for n in grid_n]
        for late in delayed_traces(trace, delays_s)
    ]


def drop_at(delays_s: np.ndarray, drops: np.ndarray, delay_s, at_row) -> np.ndarray:
    """The drop at each query's delay: ``at_row(table)`` reads one (S, C) table at the
    queries' capacities and sessions; linear in the delay from 0 (no drop) through the
    grid, held past its end."""
    rows = [np.asarray(at_row(drops[k]), dtype=np.float64) for k in range(drops.shape[0])]
    if not rows:
        return np.zeros(np.shape(delay_s))
    shape = np.broadcast_shapes(rows[0].shape, np.shape(delay_s))
    stacked = np.stack([np.zeros(shape), *(np.broadcast_to(r, shape) for r in rows)])
    d = np.broadcast_to(np.maximum(np.asarray(delay_s, dtype=np.float64), 0.0), shape)
    grid = np.r_[0.0, np.asarray(delays_s, dtype=np.float64)]
    k = np.clip(np.searchsorted(grid, d, side="right") - 1, 0, grid.size - 2)
    f = np.clip((d - grid[k]) / (grid[k + 1] - grid[k]), 0.0, 1.0)
    lo = np.take_along_axis(stacked, k[None], 0)[0]
    hi = np.take_along_axis(stacked, (k + 1)[None], 0)[0]
    return (1 - f) * lo + f * hi
