"""Trace statistics: counts, token percentiles per role and tier, gaps, compaction,
sub-agents, ideal prefix-hit ratio and arrival rate — all vectorised over the columns.

Definitions follow ``../shared/traces/README.md``: "main agent" is the primary agent of a
session (its requests are "main turns"), gaps are the client wait before a request split by
the previous stop reason of the same agent (tool_use → tool, end_turn → human), compaction
is marked by the importer (input < 0.5 x previous, previous >= 40K), and the prefix-hit
ratio is token-weighted with an infinite cache within a session.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesign.workload.builder import previous_in_agent
from codesign.workload.prefix import ideal_hit_blocks, ideal_hit_tokens
from codesign.workload.schema import GAP_HUMAN, GAP_TOOL, Trace

QUANTILES = (10, 50, 90, 99)


def pct(values: np.ndarray, qs: tuple[int, ...] = QUANTILES) -> dict[str, float | int | None]:
    """Count, mean, max and percentiles (numpy linear) of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    out: dict[str, float | int | None] = {"count": int(v.size)}
    if v.size == 0:
        out.update({f"p{q}": None for q in qs} | {"mean": None, "max": None})
        return out
    for q, val in zip(qs, np.percentile(v, qs), strict=True):
        out[f"p{q}"] = float(val)
    out["mean"] = float(v.mean())
    out["max"] = float(v.max())
    return out


def rank_in_agent(trace: Trace) -> np.ndarray:
    """0-based position of each request among its agent's requests (time order)."""
    order = np.argsort(trace.req_agent, kind="stable")
    first = np.searchsorted(trace.req_agent[order], trace.req_agent[order], side="left")
    rank = np.empty(trace.n_requests, dtype=np.int64)
    rank[order] = np.arange(trace.n_requests) - first
    return rank


def _token_block(trace: Trace, mask: np.ndarray) -> dict[str, Any]:
    return {
        "requests": int(mask.sum()),
        "input_tokens_total": int(trace.input_tokens[mask].sum()),
        "output_tokens_total": int(trace.output_tokens[mask].sum()),
        "input_tokens": pct(trace.input_tokens[mask]),
        "output_tokens": pct(trace.output_tokens[mask]),
    }


def _session_stats(trace: Trace, primary: np.ndarray) -> dict[str, Any]:
    sess = trace.req_session
    n = trace.n_sessions
    turns = np.bincount(sess[primary], minlength=n)
    t_min = np.full(n, np.inf)
    t_max = np.full(n, -np.inf)
    np.minimum.at(t_min, sess, trace.arrival_s)
    np.maximum.at(t_max, sess, trace.arrival_s)
    dur_min = np.where(np.isfinite(t_min), (t_max - t_min) / 60.0, np.nan)
    tool = trace.session_tool_tokens.astype(float)
    system = trace.session_system_tokens.astype(float)
    return {
        "main_turns": pct(turns, (10, 50, 90)),
        "duration_min": pct(dur_min, (10, 50, 90)),
        "tool_tokens": pct(np.where(tool >= 0, tool, np.nan), (10, 50, 90)),
        "system_tokens": pct(np.where(system >= 0, system, np.nan), (10, 50, 90)),
    }


def _compaction_stats(trace: Trace, primary: np.ndarray) -> dict[str, Any]:
    prev = previous_in_agent(trace.req_agent)
    events = trace.compaction & primary & (prev >= 0)
    idx = np.flatnonzero(events)
    sess = trace.req_session[idx]
    rank = rank_in_agent(trace)[idx]
    first_turn = np.full(trace.n_sessions, np.iinfo(np.int64).max)
    np.minimum.at(first_turn, sess, rank)
    first_turn = first_turn[first_turn < np.iinfo(np.int64).max]
    return {
        "events": int(idx.size),
        "sessions": int(np.unique(sess).size),
        "before_tokens": pct(trace.input_tokens[prev[idx]], (10, 50, 90)),
        "after_tokens": pct(trace.input_tokens[idx], (10, 50, 90)),
        # the compaction follows main turn N (1-based) = 0-based rank of the compacted request
        "first_after_main_turn": pct(first_turn, (10, 50, 90)),
        "sub_agent_events": int((trace.compaction & ~primary).sum()),
    }


def _subagent_stats(trace: Trace, primary: np.ndarray) -> dict[str, Any]:
    sub_agents = np.flatnonzero(trace.agent_parent >= 0)
    sub_req = ~primary
    kinds, kind_counts = np.unique(trace.agent_kind[sub_agents].astype(str), return_counts=True)
    small = trace.tier_code("small")
    agent = trace.req_agent
    # first/last request of each agent (requests are in time order within a session)
    _, first_idx = np.unique(agent, return_index=True)
    rev = agent[::-1]
    _, last_rev = np.unique(rev, return_index=True)
    last_idx = agent.size - 1 - last_rev
    agents_with_req = np.unique(agent)
    is_sub = trace.agent_parent[agents_with_req] >= 0
    # activity interval of each sub-agent: spawn → recorded end (else last arrival + server)
    end = trace.arrival_s + np.nan_to_num(trace.server_s)
    sub_ids = agents_with_req[is_sub]
    start_t = trace.agent_spawn_s[sub_ids]
    recorded_end = trace.agent_end_s[sub_ids]
    recorded = np.isfinite(recorded_end)
    end_t = np.where(recorded, recorded_end, end[last_idx][is_sub])
    sess = trace.agent_session[sub_ids]
    max_conc = _max_concurrency(sess, start_t, end_t)
    # the traces README counts only sub-agents with a recorded duration (async ones have none)
    max_conc_rec = _max_concurrency(sess[recorded], start_t[recorded], end_t[recorded])
    fanout = np.bincount(trace.agent_session[sub_agents], minlength=trace.n_sessions)
    return {
        "agents": int(sub_agents.size),
        "sessions": int((fanout > 0).sum()),
        "by_kind": {str(k): int(c) for k, c in zip(kinds, kind_counts, strict=True)},
        "requests": int(sub_req.sum()),
        "small_tier_requests": int((sub_req & (trace.tier == small)).sum()),
        "fanout_per_session": pct(fanout[fanout > 0], (50, 90)),
        "max_concurrent": int(max_conc),
        "max_concurrent_recorded_duration": int(max_conc_rec),
        "first_input_tokens": pct(trace.input_tokens[first_idx][is_sub], (10, 50, 90)),
        "last_input_tokens": pct(trace.input_tokens[last_idx][is_sub], (10, 50, 90)),
    }


def _max_concurrency(session: np.ndarray, start: np.ndarray, end: np.ndarray) -> int:
    """Most intervals overlapping at once within any one session (ends before starts)."""
    if start.size == 0:
        return 0
    t = np.r_[start, end]
    delta = np.r_[np.ones(start.size, np.int64), -np.ones(end.size, np.int64)]
    s = np.r_[session, session]
    order = np.lexsort((delta, t, s))
    return int(np.cumsum(delta[order]).max())


def _arrival_rate(trace: Trace, max_bins: int = 120) -> dict[str, Any]:
    t = trace.arrival_s
    if t.size == 0:
        return {"bin_s": 0.0, "mean_per_s": 0.0, "peak_per_s": 0.0, "requests_per_bin": []}
    span = float(t.max() - t.min())
    bin_s = max(60.0, float(np.ceil(span / max_bins / 60.0) * 60.0))
    counts = np.bincount(((t - t.min()) // bin_s).astype(np.int64))
    return {
        "bin_s": bin_s,
        "mean_per_s": float(t.size / max(span, 1e-9)),
        "peak_per_s": float(counts.max() / bin_s),
        "requests_per_bin": counts.tolist(),
    }


def trace_stats(trace: Trace) -> dict[str, Any]:
    """All statistics of ``trace`` as a JSON-ready dict (see module docstring)."""
    primary = trace.req_is_primary
    hits = ideal_hit_tokens(trace)
    sess = trace.req_session
    sess_in = np.bincount(sess, weights=trace.input_tokens, minlength=trace.n_sessions)
    sess_hit = np.bincount(sess, weights=hits, minlength=trace.n_sessions)
    with np.errstate(invalid="ignore", divide="ignore"):
        sess_ratio = sess_hit / sess_in
    total_in = int(trace.input_tokens.sum())
    tiers = {
        name: _token_block(trace, trace.tier == code) for code, name in enumerate(trace.meta.tiers)
    }
    return {
        "trace": {
            "name": trace.meta.name,
            "format": trace.meta.source_format,
            "block_size_tokens": trace.meta.block_size_tokens,
            "sessions": trace.n_sessions,
            "agents": trace.n_agents,
            "requests": trace.n_requests,
            "main_agent_requests": int(primary.sum()),
            "sub_agent_requests": int((~primary).sum()),
            "input_tokens_total": total_in,
            "output_tokens_total": int(trace.output_tokens.sum()),
        },
        "main_agent": _token_block(trace, primary),
        "sub_agent": _token_block(trace, ~primary),
        "tiers": {k: v for k, v in tiers.items() if v["requests"] > 0},
        "gaps_s": {
            "tool": pct(trace.gap_s[trace.gap_kind == GAP_TOOL]),
            "human": pct(trace.gap_s[trace.gap_kind == GAP_HUMAN]),
        },
        "server_s": pct(trace.server_s),
        "sessions": _session_stats(trace, primary),
        "compaction": _compaction_stats(trace, primary),
        "sub_agents": _subagent_stats(trace, primary),
        "prefix": {
            "ideal_hit_ratio": float(hits.sum() / total_in) if total_in else None,
            # block-weighted (partial last blocks count whole), as the Mooncake figures are
            "ideal_block_hit_ratio": float(ideal_hit_blocks(trace).sum() / trace.hash_ids.size)
            if trace.has_hashes
            else None,
            "per_session_hit_ratio": pct(sess_ratio, (10, 50, 90)),
            "has_block_hashes": trace.has_hashes,
        },
        "arrival_rate": _arrival_rate(trace),
    }
