"""`TraceSummary`: the compact view of a trace the evaluator needs, with hit-ratio curves.

Per model tier (agent tier, e.g. "main", "small"): arrays of context (input) tokens, new
tokens not cached by an infinite prefix cache, output tokens, client gaps, recorded
server times and where each request sits in its session (`critical_weights`); sessions
and requests per session; and `codesign.kvcache.HitCurve`s, so that a hit ratio is an
interpolation. A tier's curve, or the curve over all tiers together ("all": the tiers
sharing one cache), is built on first use (`TraceSummary.curve`) and kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.workload.prefix import ideal_hit_tokens
from codesign.workload.schema import Trace

ALL = "all"  # the curve of every tier's requests on one cache


@dataclass(frozen=True)
class TierSummary:
    context_tokens: np.ndarray  # input tokens per request
    new_tokens: np.ndarray  # input tokens not in an infinite per-session prefix cache
    output_tokens: np.ndarray
    gap_s: np.ndarray  # client wait before each request (NaN unknown)
    requests: int
    server_s: np.ndarray  # recorded server time per request (NaN unknown)
    primary: np.ndarray  # bool: sent by the session's primary agent
    critical: np.ndarray  # share of the response time on the session's critical path
    session: np.ndarray  # the request's session (index into the trace's sessions)


@dataclass(frozen=True)
class TraceSummary:
    name: str
    sessions: int
    requests_per_session: np.ndarray
    tiers: dict[str, TierSummary]
    curves: dict[str, object] = field(default_factory=dict)  # tier (or ALL) → HitCurve
    # what the curves are built from, on first use (not pickled: build them first)
    trace: Trace | None = field(default=None, repr=False, compare=False)
    seed: int = 0

    def curve(self, tier: str, round_robin: bool = True) -> Any:
        """The hit curve of ``tier`` (a tier name or ALL), built on first use; None when
        the summary has no curves (no block hashes, or built without them).
        ``round_robin``: with the streams a round-robin router needs (replaying them
        doubles the build; a search without that router leaves them out)."""
        cached = self.curves.get(tier)
        if cached is not None and (not round_robin or _has_round_robin(cached)):
            return cached
        if tier == ALL and len(self.tiers) == 1:  # one tier: its requests are all of them
            return self.curve(next(iter(self.tiers)), round_robin)
        if self.trace is None or (tier != ALL and tier not in self.tiers):
            return cached
        # kvcache depends on workload; round-robin streams for the routers that spread
        from codesign.kvcache.analytic import ROUND_ROBIN_WORKERS, arrangements_for, hit_curve
        from codesign.kvcache.delay import DELAY_GRID_S

        t = None if tier == ALL else tier
        workers = ROUND_ROBIN_WORKERS if round_robin else ()
        # with the replays at slower responses (the evaluator's cache feedback), averaged
        # over a few session orders where the trace has few sessions
        c = hit_curve(
            self.trace,
            t,
            self.seed,
            round_robin=workers,
            delays_s=DELAY_GRID_S,
            arrangements=arrangements_for(self.trace.n_sessions),
        )
        self.curves[tier] = c
        return c

    def hit_ratio(
        self, capacity_tokens: np.ndarray, sessions_per_cache: float = 1.0
    ) -> dict[str, np.ndarray]:
        """Per tier, hit ratio of a cache of ``capacity_tokens`` (array) shared by N sessions."""
        return {
            t: c.hit_ratio(capacity_tokens, sessions_per_cache)
            for t in self.tiers
            if (c := self.curve(t)) is not None
        }

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "trace": None}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)


def critical_weights(trace: Trace) -> np.ndarray:
    """Per request, the share of its response time that lengthens its session.

    A primary agent's requests run one after another: 1. Sub-agents run inside the
    primary agent's recorded gaps (it waits for them), several at once: a session whose
    sub-agents' spans (first arrival to last response) add up to ``p`` times their union
    is lengthened by 1 / ``p`` of each sub-agent response (the longest of parallel ones
    counts, the others overlap it).
    """
    w = np.ones(trace.n_requests)
    sub = ~trace.req_is_primary
    if not sub.any():
        return w
    agent = trace.req_agent[sub]
    start = np.full(trace.n_agents, np.inf)
    end = np.full(trace.n_agents, -np.inf)
    np.minimum.at(start, agent, trace.arrival_s[sub])
    np.maximum.at(end, agent, trace.arrival_s[sub] + np.nan_to_num(trace.server_s[sub]))
    a = np.flatnonzero(np.isfinite(start))
    sess = trace.agent_session[a]
    s0, s1 = start[a], np.maximum(end[a], start[a])
    o = np.lexsort((s0, sess))
    sess, s0, s1 = sess[o], s0[o], s1[o]
    # union of each session's spans: each span adds what reaches past the running end of
    # the earlier ones (running maximum restarted per session by an offset per session)
    first = np.r_[True, sess[1:] != sess[:-1]]
    base = s0[np.flatnonzero(first)][np.cumsum(first) - 1]
    shift = np.cumsum(first) * (float((s1 - base).max()) + 1.0)
    reach = np.maximum.accumulate(s1 - base + shift) - shift + base
    before = np.where(first, -np.inf, np.r_[-np.inf, reach[:-1]])
    union = np.bincount(sess, weights=s1 - np.maximum(s0, np.minimum(before, s1)))
    total = np.bincount(sess, weights=s1 - s0)
    share = np.ones(trace.n_sessions)
    has = np.flatnonzero(total > 0)
    share[has] = union[has] / total[has]
    w[sub] = share[trace.req_session[sub]]
    return w


def summarize(trace: Trace, with_curves: bool = True, seed: int = 0) -> TraceSummary:
    """Build the summary (curves need block hashes; traces without them get none)."""
    hits = ideal_hit_tokens(trace)
    crit = critical_weights(trace)
    primary = trace.req_is_primary
    tiers: dict[str, TierSummary] = {}
    for code, name in enumerate(trace.meta.tiers):
        m = trace.tier == code
        if not m.any():
            continue
        tiers[name] = TierSummary(
            context_tokens=trace.input_tokens[m],
            new_tokens=trace.input_tokens[m] - hits[m],
            output_tokens=trace.output_tokens[m],
            gap_s=trace.gap_s[m],
            requests=int(m.sum()),
            server_s=trace.server_s[m],
            primary=primary[m],
            critical=crit[m],
            session=trace.req_session[m],
        )
    return TraceSummary(
        name=trace.meta.name,
        sessions=trace.n_sessions,
        requests_per_session=np.bincount(trace.req_session, minlength=trace.n_sessions),
        tiers=tiers,
        trace=trace if with_curves and trace.has_hashes else None,
        seed=seed,
    )


def _has_round_robin(curve: Any) -> bool:
    return bool(getattr(curve, "round_robin_workers", np.zeros(0)).size)
