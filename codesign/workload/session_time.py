"""Session duration percentiles from the requests' response times, per session.

A session's duration at response times r_main (the primary model's requests) and r_sub
(the sub-agent model's, when it has its own pools) is

    T_s = a_s,main r_main + a_s,sub r_sub + b_s

with a_s,t the session's tier-t requests weighted by their share of the critical path
(``summary.critical_weights``: a primary agent's requests count whole, parallel sub-agents
in part) and b_s the primary agents' recorded gaps (tool, human time and the waits for
their sub-agents) less the recorded sub-agent server time on the critical path, which
the modelled responses replace. T_s is at least the critical-path responses alone (a
session whose recorded waits for its sub-agents are shorter than their recorded server
time). The median over sessions is tabulated once per load on ``RESPONSE_GRID_S`` (one
axis per served tier) and interpolated, so an evaluation costs microseconds.

Counting every request's response one after another (what the evaluator did before)
charges parallel sub-agents in series: a session whose four sub-agents run at once took
their four responses instead of the longest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from codesign.workload.summary import TierSummary

RESPONSE_GRID_S = np.concatenate([[0.0], np.geomspace(1e-3, 1e4, 63)])
# sessions the median is taken over at most (a seeded sample beyond: the median of 20,000
# is within ~1% of the spread of the whole; a 64 x 64 table over 10^5 sessions had taken
# ~150 MB and seconds)
MAX_TABLE_SESSIONS = 20_000


@dataclass(frozen=True)
class SessionCoefficients:
    """Per session: critical-path requests of each served tier (rows of ``a``, one per
    entry of ``tiers``) and the fixed time ``b`` (seconds)."""

    tiers: tuple[str, ...]
    a: np.ndarray  # (len(tiers), sessions)
    b: np.ndarray  # (sessions,)

    def duration_s(self, response_s: Sequence[float | np.ndarray]) -> np.ndarray:
        """Each session's duration at one response time per tier (arrays broadcast against
        the sessions: a (k, 1) column gives (k, sessions))."""
        crit = sum(a * r for a, r in zip(self.a, response_s, strict=True))
        return np.maximum(crit + self.b, crit)


def session_coefficients(
    tiers: Mapping[str, TierSummary], groups: Sequence[Sequence[str]], sessions: int
) -> SessionCoefficients:
    """Coefficients with the tiers of each group sharing one response time (a group is
    the tiers one deployment part serves: ["main", "small"] when they share pools)."""
    s = max(int(sessions), 1)
    a = np.zeros((len(groups), s))
    b = np.zeros(s)
    for k, group in enumerate(groups):
        for name in group:
            t = tiers[name]
            sess = np.asarray(t.session, dtype=np.int64)
            crit = np.asarray(t.critical, dtype=np.float64)
            primary = np.asarray(t.primary, dtype=bool)
            gap = np.nan_to_num(np.asarray(t.gap_s, dtype=np.float64), nan=0.0)
            srv = np.nan_to_num(np.asarray(t.server_s, dtype=np.float64), nan=0.0)
            a[k] += np.bincount(sess, weights=crit, minlength=s)
            b += np.bincount(sess[primary], weights=gap[primary], minlength=s)
            b -= np.bincount(sess[~primary], weights=(crit * srv)[~primary], minlength=s)
    return SessionCoefficients(tiers=tuple("+".join(g) for g in groups), a=a, b=b)


def p50_table(coef: SessionCoefficients) -> np.ndarray:
    """Median session duration on RESPONSE_GRID_S, one axis per tier group (1 or 2)."""
    g = RESPONSE_GRID_S
    if coef.b.size > MAX_TABLE_SESSIONS:
        keep = np.random.default_rng(0).choice(coef.b.size, MAX_TABLE_SESSIONS, replace=False)
        coef = SessionCoefficients(coef.tiers, coef.a[:, keep], coef.b[keep])
    column = g[:, None]  # (grid, 1) against (sessions,): (grid, sessions) durations
    if len(coef.tiers) == 1:
        return np.median(coef.duration_s([column]), axis=1)
    if len(coef.tiers) != 2:
        raise ValueError(f"session-time table for 1 or 2 tier groups, got {coef.tiers}")
    # one row of the grid at a time
    return np.stack([np.median(coef.duration_s([r0, column]), axis=1) for r0 in g])


def _position(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid cell and weight of each response; NaN marks one beyond the grid."""
    g = RESPONSE_GRID_S
    i = np.clip(np.searchsorted(g, r, side="right") - 1, 0, g.size - 2)
    w = (r - g[i]) / (g[i + 1] - g[i])
    bad = ~np.isfinite(r) | (r > g[-1]) | (r < 0)
    return i, np.where(bad, np.nan, np.clip(w, 0.0, 1.0)), bad


def p50_lookup(table: np.ndarray, response_s: Sequence[np.ndarray]) -> np.ndarray:
    """Interpolate ``p50_table`` (linear, bilinear for two groups) at per-candidate
    response times; NaN beyond the grid (1e4 s per request) or for a NaN response."""
    rs = [np.asarray(r, dtype=np.float64) for r in response_s]
    if table.ndim != len(rs):
        raise ValueError(f"table has {table.ndim} axes, got {len(rs)} response arrays")
    if table.ndim == 1:
        i, w, bad = _position(rs[0])
        v = table[i] * (1 - w) + table[i + 1] * w
        return np.where(bad, np.nan, v)
    r0, r1 = np.broadcast_arrays(*rs)
    i, wi, bad_i = _position(r0)
    j, wj, bad_j = _position(r1)
    lo = table[i, j] * (1 - wj) + table[i, j + 1] * wj
    hi = table[i + 1, j] * (1 - wj) + table[i + 1, j + 1] * wj
    return np.where(bad_i | bad_j, np.nan, lo * (1 - wi) + hi * wi)
