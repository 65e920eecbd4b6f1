"""How the simulated clients replay a trace: per request, what comes next and when.

A session is a tree of agents. Each agent sends its requests one after another: request
i+1 is issued ``think_s`` after the response to request i ends (the recorded client gap:
tool execution or a human; where the trace has no gap, arrival minus the previous
request's recorded end). A sub-agent is *anchored* at the last request of its parent that
arrived before the sub-agent's first request; it starts ``spawn_delay_s`` after that
request's response ends (the recorded delay after the recorded end).

Join rule (kept simple): when request r has anchored sub-agents, the parent's next request
is issued after all of them have finished, plus ``join_slack_s`` — the recorded time
between the last of those sub-agents ending and that request — instead of its own gap
(in the recorded trace, that gap already contains the wait for the sub-agents). Agents
spawned before their parent's first request start at the session start plus their
recorded offset. A session ends when all its agents have sent their last request and got
the response.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.errors import SpecError
from codesign.workload.schema import Trace


@dataclass(frozen=True)
class ReplayPlan:
    n_sessions: int
    next_req: list[int]  # next request of the same agent, -1 after the last
    think_s: list[float]  # client gap before this request (non-first requests)
    join_slack_s: list[float]  # used instead of think_s when the previous request has children
    req_agent: list[int]
    children: dict[int, list[int]]  # anchor request -> sub-agents started after its response
    spawn_delay_s: list[float]  # per agent: after the anchor's response (or session start)
    first_req: list[int]  # per agent, -1 when it has no requests
    agent_parent: list[int]
    anchor: list[int]  # per agent: the parent request it waits for, -1: the session start
    roots: list[list[int]]  # per session: agents started at the session start
    agents_with_requests: list[int]  # per session
    requests_per_session: np.ndarray
    duration_s: np.ndarray  # recorded session duration (first arrival to last end)
    tier: list[int]  # per request: trace tier code


def build_plan(trace: Trace) -> ReplayPlan:
    """The replay plan of a trace (raises SpecError for an empty trace)."""
    if trace.n_requests == 0:
        raise SpecError(f"trace {trace.meta.name!r} has no requests to simulate")
    r_n, a_n = trace.n_requests, trace.n_agents
    arrival = trace.arrival_s.astype(np.float64)
    server = np.nan_to_num(trace.server_s.astype(np.float64), nan=0.0)
    end = arrival + server
    agent = trace.req_agent.astype(np.int64)
    order = np.lexsort((arrival, agent))  # requests grouped by agent, by arrival
    first = np.full(a_n, -1, dtype=np.int64)
    nxt = np.full(r_n, -1, dtype=np.int64)
    same = agent[order[1:]] == agent[order[:-1]]
    nxt[order[:-1][same]] = order[1:][same]
    is_first = np.ones(r_n, dtype=bool)
    is_first[order[1:][same]] = False
    first[agent[is_first]] = np.flatnonzero(is_first)
    prev = np.full(r_n, -1, dtype=np.int64)
    prev[order[1:][same]] = order[:-1][same]
    gap = trace.gap_s.astype(np.float64)
    fallback = np.where(prev >= 0, arrival - end[np.maximum(prev, 0)], 0.0)
    think = np.maximum(np.where(np.isfinite(gap), gap, fallback), 0.0)
    last_end = np.full(a_n, -np.inf)
    np.maximum.at(last_end, agent, end)
    sess = trace.agent_session.astype(np.int64)
    s_first = np.full(trace.n_sessions, np.inf)
    np.minimum.at(s_first, trace.req_session, arrival)
    s_last = np.full(trace.n_sessions, -np.inf)
    np.maximum.at(s_last, trace.req_session, end)
    parent = trace.agent_parent.astype(np.int64)

    children: dict[int, list[int]] = {}
    anchor = [-1] * a_n
    delay = [0.0] * a_n
    roots: list[list[int]] = [[] for _ in range(trace.n_sessions)]
    by_agent = np.split(order, np.flatnonzero(~same) + 1) if r_n else []
    reqs_of = {int(agent[g[0]]): g for g in by_agent if g.size}
    for a in range(a_n):
        f = int(first[a])
        if f < 0:
            continue
        p = int(parent[a])
        pr = reqs_of.get(p) if p >= 0 else None
        k = -1
        if pr is not None:
            k = int(np.searchsorted(arrival[pr], arrival[f], side="right")) - 1
        if k < 0 or pr is None:
            roots[int(sess[a])].append(a)
            delay[a] = max(float(arrival[f] - s_first[sess[a]]), 0.0)
            continue
        r = int(pr[k])
        anchor[a] = r
        children.setdefault(r, []).append(a)
        delay[a] = max(float(arrival[f] - end[r]), 0.0)
    slack = think.copy()
    for r, kids in children.items():
        n = int(nxt[r])
        if n >= 0:
            slack[n] = max(float(arrival[n] - max(last_end[kids])), 0.0)
    with_reqs = np.bincount(sess[first >= 0], minlength=trace.n_sessions)
    return ReplayPlan(
        n_sessions=trace.n_sessions,
        next_req=nxt.tolist(),
        think_s=think.tolist(),
        join_slack_s=slack.tolist(),
        req_agent=agent.tolist(),
        children=children,
        spawn_delay_s=delay,
        first_req=first.tolist(),
        agent_parent=parent.tolist(),
        anchor=anchor,
        roots=roots,
        agents_with_requests=with_reqs.tolist(),
        requests_per_session=np.bincount(trace.req_session, minlength=trace.n_sessions),
        duration_s=np.where(np.isfinite(s_first), s_last - s_first, 0.0),
        tier=trace.tier.astype(np.int64).tolist(),
    )
