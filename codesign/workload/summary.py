"""`TraceSummary`: the compact view of a trace the evaluator needs, with hit-ratio curves.

Per model tier (agent tier, e.g. "main", "small"): arrays of context (input) tokens, new
tokens not cached by an infinite prefix cache, output tokens and client gaps; sessions and
requests per session; and a precomputed `codesign.kvcache.HitCurve`, so that
``summary.hit_ratio(capacity_tokens_array, sessions_per_cache)`` is an interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codesign.workload.prefix import ideal_hit_tokens
from codesign.workload.schema import Trace


@dataclass(frozen=True)
class TierSummary:
    context_tokens: np.ndarray  # input tokens per request
    new_tokens: np.ndarray  # input tokens not in an infinite per-session prefix cache
    output_tokens: np.ndarray
    gap_s: np.ndarray  # client wait before each request (NaN unknown)
    requests: int


@dataclass(frozen=True)
class TraceSummary:
    name: str
    sessions: int
    requests_per_session: np.ndarray
    tiers: dict[str, TierSummary]
    curves: dict[str, object] = field(default_factory=dict)  # tier → kvcache.HitCurve

    def hit_ratio(
        self, capacity_tokens: np.ndarray, sessions_per_cache: float = 1.0
    ) -> dict[str, np.ndarray]:
        """Per tier, hit ratio of a cache of ``capacity_tokens`` (array) shared by N sessions."""
        return {
            t: c.hit_ratio(capacity_tokens, sessions_per_cache)  # type: ignore[attr-defined]
            for t, c in self.curves.items()
        }


def summarize(trace: Trace, with_curves: bool = True, seed: int = 0) -> TraceSummary:
    """Build the summary (curves need block hashes; traces without them get none)."""
    from codesign.kvcache.analytic import hit_curve  # kvcache depends on workload

    hits = ideal_hit_tokens(trace)
    tiers: dict[str, TierSummary] = {}
    curves: dict[str, object] = {}
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
        )
        if with_curves and trace.has_hashes:
            curves[name] = hit_curve(trace, name, seed)
    return TraceSummary(
        name=trace.meta.name,
        sessions=trace.n_sessions,
        requests_per_session=np.bincount(trace.req_session, minlength=trace.n_sessions),
        tiers=tiers,
        curves=curves,
    )
