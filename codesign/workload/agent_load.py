"""The load an agent trace puts on a deployment, reduced for the analytic evaluator.

Per model tier ("main", "small"; "all" when the tiers share one deployment): the mean
context, ideal-new (uncached at infinite cache) and output tokens per request, the mean
client gap before a request (tool or human time: the closed-loop "think time"), requests
per session and the tier's share of a session's duration (critical path), its hit-ratio
curve, and lookup tables that turn a hit ratio into TTFT percentiles and an average
response time into session-time percentiles without touching the per-request arrays again
(so one evaluation costs microseconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.errors import SpecError
from codesign.workload.session_time import p50_lookup, p50_table, session_coefficients
from codesign.workload.summary import ALL, TierSummary, TraceSummary

HIT_GRID = np.linspace(0.0, 1.0, 41)
SUB_TIER = "small"  # the sub-agent tier, served by a deployment's sub-agent pools
QUANTILES = (0.5, 0.9, 0.99)
# tail probabilities of a waiting request's wait, for the residual-life quantile table
WAIT_TAIL_GRID = np.geomspace(1.0, 1e-4, 41)
_TAIL_STEP = float(np.log(WAIT_TAIL_GRID[0] / WAIT_TAIL_GRID[1]))  # uniform in -ln tail


@dataclass(frozen=True)
class TierLoad:
    name: str  # tier name ("main", "small") or "all" for pooled tiers
    requests: int
    context_mean: float
    context_p50: float
    context_p90: float
    new_ideal_mean: float  # tokens not in an infinite per-session prefix cache
    output_mean: float
    think_mean_s: float
    # new-token quantiles relative to the mean, for hit ratios on HIT_GRID: (len, 3)
    new_quantile_ratio: np.ndarray
    # squared coefficient of variation of the new tokens on HIT_GRID (prefill service time
    # variability: a few whole-context prefills among many small ones)
    new_scv: np.ndarray
    # residual prefill work (the part of the request in service that an arrival waits
    # for) at tail probabilities WAIT_TAIL_GRID, over its mean, on HIT_GRID: (len, 41)
    residual_ratio: np.ndarray
    # the tier's share of a session's duration: a_t r + b_t at a response time r, with
    # a_t its requests per session on the critical path (a primary agent's count whole,
    # parallel sub-agents' in part) and b_t the primary agents' gaps (which hold the
    # recorded waits for sub-agents) less the recorded sub-agent server time in them
    requests_per_session: float = 0.0
    critical_requests: float = 0.0
    critical_fixed_s: float = 0.0
    server_mean_s: float = 0.0  # recorded server time per request (unknown: 0)
    curve: Any = None  # kvcache.HitCurve of the tier's requests on one cache (None: none)
    # moments of a request's prefill work on HIT_GRID, (len, 5): E[e], E[e^2], E[a],
    # E[a^2], E[e a] of its uncached tokens e and the causal attention pairs a they
    # compute, (L^2 - (L - e)^2) / 2 for a prompt of L tokens (None: tokens only)
    work_moments: np.ndarray | None = None

    @property
    def serial(self) -> bool:
        """All its requests and gaps follow one another in their sessions (no sub-agents):
        a session lasts its requests x (response + gap)."""
        r, fixed = self.requests_per_session, self.requests_per_session * self.think_mean_s
        return bool(
            np.isclose(self.critical_requests, r, rtol=1e-9, atol=0)
            and np.isclose(self.critical_fixed_s, fixed, rtol=1e-9, atol=1e-9)
        )

    def new_tokens(self, hit: np.ndarray) -> np.ndarray:
        """Mean new (uncached) prompt tokens per request at a token hit ratio."""
        floor = self.new_ideal_mean
        return np.maximum(self.context_mean * (1.0 - np.asarray(hit)), floor)

    def quantile_ratio(self, hit: np.ndarray) -> np.ndarray:
        """(n, 3) new-token p50/p90/p99 over the mean at each hit ratio."""
        h = np.clip(np.asarray(hit, dtype=np.float64), 0, 1)
        return np.stack(
            [np.interp(h, HIT_GRID, self.new_quantile_ratio[:, k]) for k in range(len(QUANTILES))],
            axis=-1,
        )

    def wait_ratio(self, hit: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """A waiting request's wait quantile at tail probability ``tail`` (per candidate),
        over the mean wait: the residual-life distribution of the prefill work (with
        heavy-tailed work most waits are short and a few sit behind a whole context).
        Bilinear in (hit on HIT_GRID, -ln tail on WAIT_TAIL_GRID; both uniform grids)."""
        h = np.clip(np.asarray(hit, dtype=np.float64), 0, 1) * (len(HIT_GRID) - 1)
        i = np.minimum(h.astype(np.int64), len(HIT_GRID) - 2)
        fh = h - i
        x = -np.log(np.clip(np.asarray(tail, dtype=np.float64), 1e-4, 1.0)) / _TAIL_STEP
        j = np.minimum(x.astype(np.int64), len(WAIT_TAIL_GRID) - 2)
        fx = x - j
        r = self.residual_ratio
        lo = r[i, j] * (1 - fx) + r[i, j + 1] * fx
        hi = r[i + 1, j] * (1 - fx) + r[i + 1, j + 1] * fx
        return lo + (hi - lo) * fh

    def prefill_scv(
        self, hit: np.ndarray, pair_tokens: np.ndarray | float | None = None
    ) -> np.ndarray:
        """Squared coefficient of variation of a request's prefill time at each hit ratio,
        for the M/G/1 queue wait: its uncached tokens' alone, or with ``pair_tokens`` (the
        time of one causal attention pair in token-times of the linear layers) of the
        work e + pair_tokens x a. A whole long context that misses costs its tokens and
        the square of its length: 900K tokens of Qwen3-32B compute 4e11 pairs, 35x their
        linear work on an H100 (`evaluate_core.pair_tokens`), so a few such prefills set the
        queue's variability."""
        h = np.clip(np.asarray(hit, dtype=np.float64), 0, 1)
        if pair_tokens is None or self.work_moments is None:
            return np.interp(h, HIT_GRID, self.new_scv)
        e, e2, a, a2, ea = (np.interp(h, HIT_GRID, self.work_moments[:, k]) for k in range(5))
        k = np.asarray(pair_tokens, dtype=np.float64)
        mean = e + k * a
        second = e2 + 2.0 * k * ea + k * k * a2
        return np.maximum(second / np.maximum(mean * mean, 1e-300) - 1.0, 0.0)


@dataclass(frozen=True)
class AgentLoad:
    summary: TraceSummary
    tiers: dict[str, TierLoad]
    session_requests: np.ndarray  # requests per session (all tiers)
    session_gap_s: np.ndarray  # sum of client gaps per session
    # median session duration over RESPONSE_GRID_S: one axis, or two (the main part's
    # response, then the sub-agent part's)
    session_time_p50_table: np.ndarray

    def session_time_p50_s(
        self, response_s: np.ndarray, sub_response_s: np.ndarray | None = None
    ) -> np.ndarray:
        """Median session duration when the main part's requests take ``response_s`` and
        the sub-agent part's ``sub_response_s`` (per candidate; ignored when the load
        serves every tier on one part) — along each session's critical path
        (``workload.session_time``). NaN beyond 1e4 s per request."""
        r = np.asarray(response_s, dtype=np.float64)
        if not r.size:
            return r
        if self.session_time_p50_table.ndim == 1:
            return p50_lookup(self.session_time_p50_table, [r])
        sub = r if sub_response_s is None else sub_response_s
        return p50_lookup(self.session_time_p50_table, [r, np.asarray(sub, dtype=np.float64)])

    @property
    def requests_per_session_mean(self) -> float:
        return float(self.session_requests.mean())


def _tier_load(
    name: str,
    context: np.ndarray,
    new: np.ndarray,
    output: np.ndarray,
    gap: np.ndarray,
    path: TierSummary | None = None,
    sessions: int = 1,
    curve: Any = None,
) -> TierLoad:
    """The tier's load; ``path``: its requests' server times and places in their sessions
    (none: every request one after another), over ``sessions`` sessions."""
    c = context.astype(np.float64)
    n = new.astype(np.float64)
    # A cache below the ideal adds misses on top of each request's unavoidable new tokens
    # (tool results, first requests, compactions). An LRU cache loses a session's context
    # whole (its blocks age together during the session's gap), so the extra misses are
    # whole cacheable contexts of a share p of the requests: the others keep the shape of
    # the new tokens themselves (many small), the missing ones prefill their contexts.
    # (Spreading them over every request instead put the median request at ~60% of the
    # mean: 0.57 at hit 0.94 on 64 fleet sessions, where the simulator measured 0.10.)
    ratios = np.empty((len(HIT_GRID), len(QUANTILES)))
    scv = np.empty(len(HIT_GRID))
    resid = np.empty((len(HIT_GRID), len(WAIT_TAIL_GRID)))
    moments = np.empty((len(HIT_GRID), 5))
    cacheable = np.maximum(c - n, 0.0)
    # attention pairs: a request that keeps its cached prefix computes its new tokens'
    # pairs, one that misses its whole context all of them
    pairs = np.concatenate([(c * c - cacheable * cacheable) / 2.0, c * c / 2.0])
    eff = np.concatenate([n, n + cacheable])
    for j, h in enumerate(HIT_GRID):
        p = min(max((1 - h) * c.sum() - n.sum(), 0.0) / max(cacheable.sum(), 1e-9), 1.0)
        w = np.concatenate([np.full(n.size, 1.0 - p), np.full(n.size, p)])
        wn = w / max(w.sum(), 1e-12)
        mean = max(float((wn * eff).sum()), 1e-9)
        ratios[j] = _weighted_quantiles(eff, w, QUANTILES) / mean
        scv[j] = float((wn * (eff - mean) ** 2).sum()) / mean**2
        resid[j] = _residual_quantiles(eff, w)
        moments[j] = [
            (wn * eff).sum(),
            (wn * eff * eff).sum(),
            (wn * pairs).sum(),
            (wn * pairs * pairs).sum(),
            (wn * eff * pairs).sum(),
        ]
    g = np.nan_to_num(gap.astype(np.float64), nan=0.0)
    srv = np.zeros_like(g) if path is None else np.nan_to_num(path.server_s.astype(np.float64))
    primary = np.ones(g.size, dtype=bool) if path is None else path.primary
    crit = np.ones_like(g) if path is None else path.critical
    s = max(sessions, 1)
    return TierLoad(
        name=name,
        requests=len(c),
        context_mean=float(c.mean()),
        context_p50=float(np.quantile(c, 0.5)),
        context_p90=float(np.quantile(c, 0.9)),
        new_ideal_mean=float(n.mean()),
        output_mean=float(np.maximum(output, 1).mean()),
        think_mean_s=float(g.mean()),
        new_quantile_ratio=ratios,
        new_scv=scv,
        residual_ratio=resid,
        requests_per_session=len(c) / s,
        critical_requests=float(crit.sum()) / s,
        critical_fixed_s=float(g[primary].sum() - (crit * srv)[~primary].sum()) / s,
        server_mean_s=float(srv.mean()),
        curve=curve,
        work_moments=moments,
    )


def _arrays(t: TierSummary) -> tuple[np.ndarray, ...]:
    return t.context_tokens, t.new_tokens, t.output_tokens, t.gap_s


def _weighted_quantiles(x: np.ndarray, w: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """Quantiles of ``x`` with sample weights ``w`` (the inverse of the weighted CDF)."""
    o = np.argsort(x, kind="stable")
    xs, cw = x[o], np.cumsum(w[o])
    if cw.size == 0 or cw[-1] <= 0:
        return np.zeros(len(qs))
    k = np.searchsorted(cw, np.asarray(qs) * cw[-1], side="left")
    return xs[np.minimum(k, xs.size - 1)]


def _residual_quantiles(work: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Quantiles (at 1 - WAIT_TAIL_GRID) of the residual life of ``work`` (sample weights
    ``weight``, default equal) over its mean: P(R > t) = E[(S - t)+] / E[S],
    E[R] = E[S^2] / (2 E[S])."""
    w = np.ones(np.shape(work)) if weight is None else np.asarray(weight, dtype=np.float64)
    o = np.argsort(np.maximum(work, 0.0), kind="stable")
    s, w = np.maximum(work, 0.0)[o], w[o]
    total = float((w * s).sum())
    if s.size == 0 or s[-1] <= 0 or total <= 0:
        return np.ones(len(WAIT_TAIL_GRID))
    above_ws = np.cumsum((w * s)[::-1])[::-1]  # sum of w_i s_i for i >= k
    above_w = np.cumsum(w[::-1])[::-1]
    survival = (above_ws - above_w * s) / total  # P(R > s_k), decreasing
    t = np.concatenate([[0.0], s])
    sv = np.concatenate([[1.0], survival])
    # invert the decreasing survival: t at each tail probability
    q = np.interp(WAIT_TAIL_GRID[::-1], sv[::-1], t[::-1])[::-1]
    mean_r = float((w * s**2).sum() / (2.0 * total))
    return q / max(mean_r, 1e-12)


def agent_load(
    summary: TraceSummary,
    session_gap_s: np.ndarray | None = None,
    merge_tiers: bool = False,
    round_robin: bool = True,
) -> AgentLoad:
    """Precompute the evaluator's view of a trace summary.

    ``session_gap_s``: total client gap per session (see ``session_gaps``), kept as
    ``AgentLoad.session_gap_s`` (without it, summed from the tiers' gaps); the session time
    follows each session's critical path from the summary itself (``session_time``).
    ``merge_tiers``: serve every tier on one deployment (no separate sub-agent pools); the
    tiers are pooled into one "all" tier.
    ``round_robin``: build the hit curves' round-robin streams (a caller that evaluates no
    round-robin router, such as a search without it, skips them: half the build time).
    """
    if not summary.tiers:
        raise SpecError(f"trace {summary.name!r} has no requests to evaluate")
    tiers: dict[str, TierLoad] = {}
    if merge_tiers:  # every tier's requests on the same caches: one curve over them all
        ts = list(summary.tiers.values())
        cat = {
            f: np.concatenate([getattr(t, f) for t in ts])
            for f in TierSummary.__dataclass_fields__
            if f != "requests"
        }
        pooled = TierSummary(**cat, requests=sum(t.requests for t in ts))
        tiers[ALL] = _tier_load(
            ALL, *_arrays(pooled), pooled, summary.sessions, summary.curve(ALL, round_robin)
        )
    else:
        for name, t in summary.tiers.items():
            tiers[name] = _tier_load(
                name, *_arrays(t), t, summary.sessions, summary.curve(name, round_robin)
            )
    reqs = np.asarray(summary.requests_per_session, dtype=np.float64)
    coef = session_coefficients(summary.tiers, _tier_groups(summary, merge_tiers), summary.sessions)
    if session_gap_s is None:
        gaps = np.zeros(summary.sessions)
        for t in summary.tiers.values():
            g = np.nan_to_num(np.asarray(t.gap_s, dtype=np.float64), nan=0.0)
            gaps += np.bincount(t.session, weights=g, minlength=summary.sessions)
    else:
        gaps = np.asarray(session_gap_s, dtype=np.float64)
    return AgentLoad(
        summary=summary,
        tiers=tiers,
        session_requests=reqs,
        session_gap_s=gaps,
        session_time_p50_table=p50_table(coef),
    )


def sub_tier_apart(tier_names: Iterable[str], merge_tiers: bool) -> bool:
    """Whether a deployment's sub-agent pools serve the trace's sub-agent ("small") tier:
    the tiers are kept apart and the trace has requests of that tier and of another.

    A trace of small-tier requests only is served on the main pools: its tier comes from
    model-name markers ("mini", "flash", ...), so such a trace is its own primary agent
    (e.g. one recorded with a mini model), not sub-agents of a missing main one. The
    evaluator (``_tier_groups``, ``evaluate.tier_of``) and the simulator both ask this."""
    names = set(tier_names)
    return not merge_tiers and SUB_TIER in names and bool(names - {SUB_TIER})


def _tier_groups(summary: TraceSummary, merge_tiers: bool) -> list[list[str]]:
    """The tiers each deployment part serves: the sub-agent ("small") tier on its own
    part when ``sub_tier_apart``, else all on one."""
    names = list(summary.tiers)
    if not sub_tier_apart(names, merge_tiers):
        return [names]
    return [[n for n in names if n != SUB_TIER], [SUB_TIER]]


def session_gaps(trace: object) -> np.ndarray:
    """Total known client gap (tool + human time) per session of a `Trace`."""
    gap = np.nan_to_num(trace.gap_s.astype(np.float64), nan=0.0)  # type: ignore[attr-defined]
    return np.bincount(
        trace.req_session,
        weights=gap,  # type: ignore[attr-defined]
        minlength=trace.n_sessions,
    )  # type: ignore[attr-defined]
