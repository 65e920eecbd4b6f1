"""`fit_fleet_params`: fit `SynthParams` to a real agent trace (e.g. the 710 Claude Code sessions).

Each distribution is an empirical quantile table (`dist.fit_table`) of the trace's own
figures, computed with the same definitions as `codesign.workload.stats`:

* sessions are split into context classes by the largest input their main model ever
  reached in the trace (> 300K tokens: a 1M-context model, else a 200K-class model);
  per class: turns per session, first-request context, growth between consecutive main
  requests (compacted requests excluded, clipped at 0), the compaction threshold (input
  before each compaction) and post-compaction size, and the compaction probability
  (sessions that compacted / sessions whose context reached the 10th percentile of the
  class's thresholds);
* per session: tool and system prefix; per request: output tokens, server time, tool and
  human gaps (by gap kind), the share of end_turn stops among main turns;
* sub-agents: share of sessions with any, count per such session, kinds, share on the small
  tier, calls per sub-agent, first and last context, growth and gaps between their calls,
  and the growth shape (how much of a sub-agent's growth is done a quarter, half and
  three quarters through its calls, as an exponent).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from codesign.errors import SpecError
from codesign.workload.builder import previous_in_agent
from codesign.workload.schema import (
    GAP_HUMAN,
    GAP_TOOL,
    STOP_END_TURN,
    STOP_TOOL_USE,
    Trace,
    model_tier,
)
from codesign.workload.synth.dist import fit_table
from codesign.workload.synth.params import ContextClass, SubAgentParams, SynthParams

LONG_CONTEXT_MIN_TOKENS = 300_000


def _first_last(agent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, first = np.unique(agent, return_index=True)
    _, last_rev = np.unique(agent[::-1], return_index=True)
    return first, agent.size - 1 - last_rev


def _normal_score_corr(cols: np.ndarray) -> np.ndarray:
    """Correlation of the normal scores (Gaussian copula) of the rows of ``cols``."""
    k, n = cols.shape
    if n < 3:
        return np.eye(k)
    ranks = np.argsort(np.argsort(cols, axis=1, kind="stable"), axis=1, kind="stable")
    z = ndtri((ranks + 0.5) / n)
    corr = np.corrcoef(z)
    np.fill_diagonal(corr, 1.0)
    return np.round(corr, 3)


def _class(
    t: Trace, name: str, sessions: np.ndarray, dominant: np.ndarray, window: int
) -> ContextClass:
    in_cls = np.zeros(t.n_sessions, dtype=bool)
    in_cls[sessions] = True
    prim = t.req_is_primary & in_cls[t.req_session]
    prev = previous_in_agent(t.req_agent)
    comp = prim & t.compaction & (prev >= 0)
    grow = prim & (prev >= 0) & ~t.compaction
    first, _ = _first_last(t.req_agent)
    first = first[prim[first]]
    before = t.input_tokens[prev[comp]]
    sess = t.req_session
    max_ctx = np.zeros(t.n_sessions)
    np.maximum.at(max_ctx, sess[prim], t.input_tokens[prim])
    compacted = np.bincount(sess[comp], minlength=t.n_sessions) > 0
    prob = 0.0
    cls: dict[str, object] = {}
    if before.size:
        reached = in_cls & (max_ctx >= np.percentile(before, 10))
        prob = float(min(1.0, compacted[in_cls].sum() / max(int(reached.sum()), 1)))
        cls["compaction_threshold_tokens"] = fit_table(before)
        cls["post_compaction_tokens"] = fit_table(t.input_tokens[comp])
    turns = np.bincount(sess[prim], minlength=t.n_sessions)
    n_grow = np.bincount(sess[grow], minlength=t.n_sessions)
    delta = np.maximum(t.input_tokens[grow] - t.input_tokens[prev[grow]], 0).astype(float)
    mean_g = np.bincount(sess[grow], delta, t.n_sessions) / np.maximum(n_grow, 1)
    has_g = in_cls & (n_grow > 0) & (mean_g > 0)
    pooled = float(delta.mean()) if delta.size else 1.0
    c0 = np.zeros(t.n_sessions)
    c0[sess[first]] = t.input_tokens[first]
    cols = np.vstack([turns[has_g], c0[has_g], mean_g[has_g]])
    cls["copula_corr"] = _normal_score_corr(cols).tolist()
    cls["growth_scale"] = fit_table(mean_g[has_g] / pooled, integer=False)
    names, counts = np.unique(np.asarray(t.meta.models)[dominant[sessions]], return_counts=True)
    return ContextClass(
        name=name,
        weight=float(sessions.size),
        models={str(n): float(c) for n, c in zip(names, counts, strict=True)},
        context_window_tokens=window,
        turns=fit_table(turns[sessions]),
        initial_context_tokens=fit_table(t.input_tokens[first]),
        # per-turn growth in units of its session's mean, times the pooled mean
        context_growth_tokens=fit_table(delta / np.maximum(mean_g[sess[grow]], 1.0) * pooled),
        compaction_prob=prob,
        **cls,  # type: ignore[arg-type]
    )


def _subagents(t: Trace) -> SubAgentParams:
    subs = np.flatnonzero(t.agent_parent >= 0)
    if subs.size == 0:
        return SubAgentParams(session_prob=0.0)
    fan = np.bincount(t.agent_session[subs], minlength=t.n_sessions)
    sub_req = ~t.req_is_primary
    prev = previous_in_agent(t.req_agent)
    first, last = _first_last(t.req_agent)
    first = first[sub_req[first]]
    last = last[sub_req[last]]
    later = sub_req & (prev >= 0)
    small = t.tier_code("small")
    agent_small = np.bincount(t.req_agent[sub_req], t.tier[sub_req] == small, t.n_agents)
    agent_n = np.bincount(t.req_agent[sub_req], minlength=t.n_agents)
    with_req = subs[agent_n[subs] > 0]
    kinds, kind_n = np.unique(t.agent_kind[subs].astype(str), return_counts=True)
    return SubAgentParams(
        session_prob=float((fan > 0).mean()),
        count=fit_table(fan[fan > 0]),
        kinds={str(k): float(c) for k, c in zip(kinds, kind_n, strict=True)},
        small_model_prob=float((agent_small[with_req] * 2 > agent_n[with_req]).mean()),
        turns=fit_table(agent_n[with_req]),
        initial_context_tokens=fit_table(t.input_tokens[first]),
        context_growth_tokens=fit_table(
            np.maximum(t.input_tokens[later] - t.input_tokens[prev[later]], 0)
        ),
        gap_s=fit_table(t.gap_s[later], integer=False),
        final_context_tokens=fit_table(t.input_tokens[last]),
        growth_shape=_growth_shape(t, sub_req),
    )


def _growth_shape(t: Trace, sub_req: np.ndarray) -> float:
    """Exponent a with progress (i/(n-1))**a ~ mean share of a sub-agent's growth done by
    call i (least squares in log space at 25/50/75% of its calls)."""
    agent = t.req_agent[sub_req]
    x = t.input_tokens[sub_req].astype(float)
    order = np.argsort(agent, kind="stable")
    agent, x = agent[order], x[order]
    starts = np.flatnonzero(np.r_[True, agent[1:] != agent[:-1]])
    ends = np.r_[starts[1:], agent.size]
    grid = np.asarray([0.25, 0.5, 0.75])
    shapes = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        v = x[a:b]
        if v.size > 2 and v[-1] > v[0]:
            pos = np.linspace(0.0, 1.0, v.size)
            shapes.append(np.interp(grid, pos, (v - v[0]) / (v[-1] - v[0])))
    if not shapes:
        return 1.0
    mean = np.clip(np.mean(shapes, axis=0), 1e-3, 1 - 1e-3)
    lg = np.log(grid)
    return float(round(np.sum(lg * np.log(mean)) / np.sum(lg * lg), 3))


def fit_fleet_params(trace: Trace, sessions: int | None = None, seed: int = 0) -> SynthParams:
    """`SynthParams` whose distributions are the quantile tables of ``trace``."""
    t = trace
    if t.n_sessions == 0 or t.n_requests == 0:
        raise SpecError("cannot fit generator parameters to an empty trace")
    prim = t.req_is_primary
    sess = t.req_session
    n_models = max(len(t.meta.models), 1)
    per = np.zeros((t.n_sessions, n_models))
    known = prim & (t.model >= 0)
    np.add.at(per, (sess[known], t.model[known]), 1)
    dominant = per.argmax(axis=1)
    model_max = np.zeros(n_models)
    np.maximum.at(model_max, t.model[t.model >= 0], t.input_tokens[t.model >= 0])
    is_long = model_max[dominant] > LONG_CONTEXT_MIN_TOKENS
    classes = []
    for name, mask in (("200k", ~is_long), ("1m", is_long)):
        s = np.flatnonzero(mask & (np.bincount(sess[prim], minlength=t.n_sessions) > 0))
        if s.size:
            own = (
                prim
                & mask[sess]
                & ((model_max[t.model] > LONG_CONTEXT_MIN_TOKENS) == (name == "1m"))
            )
            top = float(np.max(np.where(own, t.input_tokens, 0)))
            window = int(np.ceil(top * 1.001 / 10_000) * 10_000)
            classes.append(_class(t, name, s, dominant, window))
    stops = t.stop[prim]
    turns_with_stop = np.isin(stops, (STOP_TOOL_USE, STOP_END_TURN))
    small = [m for m in t.meta.models if model_tier(m) == "small"]
    tool = t.session_tool_tokens[t.session_tool_tokens >= 0]
    system = t.session_system_tokens[t.session_system_tokens >= 0]
    return SynthParams(
        name="claude-code-fleet",
        description=f"fitted to {t.meta.name} ({t.n_sessions} sessions)",
        sessions=sessions or t.n_sessions,
        seed=seed,
        block_size_tokens=t.meta.block_size_tokens or 64,
        classes=classes,
        tool_tokens=fit_table(tool if tool.size else np.zeros(1)),
        system_tokens=fit_table(system if system.size else np.zeros(1)),
        output_tokens=fit_table(t.output_tokens),
        end_turn_prob=float((stops[turns_with_stop] == STOP_END_TURN).mean()),
        tool_gap_s=fit_table(t.gap_s[t.gap_kind == GAP_TOOL], integer=False),
        human_gap_s=fit_table(t.gap_s[t.gap_kind == GAP_HUMAN], integer=False),
        server_s=fit_table(t.server_s, integer=False),
        gap_resolution_s=1.0,
        small_model=small[0] if small else "claude-haiku-4-5",
        subagents=_subagents(t),
    )
