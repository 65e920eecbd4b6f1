"""Compare two traces distribution by distribution: two-sample KS statistics and pass/fail.

`distributions(trace)` extracts, vectorised over the columns and with the definitions of
`codesign.workload.stats`, the samples the synthetic generator must reproduce; `compare`
runs ``scipy.stats.ks_2samp`` on each pair. A distribution passes when its KS statistic is
at most ``max_ks`` (0.1 by default); one that is empty in either trace is reported as
"n/a" and neither passes nor fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import ks_2samp

from codesign.workload.builder import previous_in_agent
from codesign.workload.schema import GAP_HUMAN, GAP_TOOL, Trace

MAX_KS = 0.1

# name → what the sample is (one value per ...)
DISTRIBUTIONS: dict[str, str] = {
    "context_tokens": "main-agent input tokens per request",
    "output_tokens": "output tokens per request",
    "tool_gap_s": "client wait before a request after tool_use",
    "human_gap_s": "client wait before a request after end_turn",
    "turns_per_session": "main-agent requests per session",
    "compaction_before_tokens": "main-agent input before each compaction",
    "compaction_after_tokens": "main-agent input of each compacted request",
    "subagents_per_session": "sub-agents spawned per session (0 included)",
    "subagent_context_tokens": "sub-agent input tokens per request",
    "small_tier_share": "per request: 1 on the small model tier, else 0",
    "tool_prefix_tokens": "static tool-definition tokens per session",
    "system_prefix_tokens": "static system-prompt tokens per session",
}


def distributions(trace: Trace) -> dict[str, np.ndarray]:
    """The samples named in `DISTRIBUTIONS` (float arrays; unknown values dropped)."""
    t = trace
    prim = t.req_is_primary
    prev = previous_in_agent(t.req_agent)
    comp = prim & t.compaction & (prev >= 0)
    small = t.tier_code("small")
    subs = t.agent_parent >= 0
    tool = t.session_tool_tokens
    system = t.session_system_tokens
    out = {
        "context_tokens": t.input_tokens[prim],
        "output_tokens": t.output_tokens,
        "tool_gap_s": t.gap_s[t.gap_kind == GAP_TOOL],
        "human_gap_s": t.gap_s[t.gap_kind == GAP_HUMAN],
        "turns_per_session": np.bincount(t.req_session[prim], minlength=t.n_sessions),
        "compaction_before_tokens": t.input_tokens[prev[comp]],
        "compaction_after_tokens": t.input_tokens[comp],
        "subagents_per_session": np.bincount(t.agent_session[subs], minlength=t.n_sessions),
        "subagent_context_tokens": t.input_tokens[~prim],
        "small_tier_share": (t.tier == small).astype(float),
        "tool_prefix_tokens": tool[tool >= 0],
        "system_prefix_tokens": system[system >= 0],
    }
    return {k: (v := np.asarray(x, dtype=float))[np.isfinite(v)] for k, x in out.items()}


def compare(a: Trace, b: Trace, max_ks: float = MAX_KS) -> dict[str, Any]:
    """KS statistic, p-value, sizes and medians of every distribution of ``a`` vs ``b``."""
    da, db = distributions(a), distributions(b)
    rows = []
    for name, what in DISTRIBUTIONS.items():
        x, y = da[name], db[name]
        row: dict[str, Any] = {
            "distribution": name,
            "description": what,
            "n_a": int(x.size),
            "n_b": int(y.size),
            "median_a": float(np.median(x)) if x.size else None,
            "median_b": float(np.median(y)) if y.size else None,
            "ks": None,
            "p_value": None,
            "status": "n/a",
        }
        if x.size and y.size:
            res = ks_2samp(x, y)
            row["ks"] = float(res.statistic)
            row["p_value"] = float(res.pvalue)
            row["status"] = "pass" if res.statistic <= max_ks else "fail"
        rows.append(row)
    failed = [r["distribution"] for r in rows if r["status"] == "fail"]
    return {
        "a": a.meta.name,
        "b": b.meta.name,
        "max_ks": max_ks,
        "passed": not failed,
        "failed": failed,
        "distributions": rows,
    }
