"""Prefix-cache hit ratio vs KV-cache capacity for a workload trace.

One curve per N (sessions sharing one cache; `codesign.kvcache.hit_curve`, exact at the
N plotted): the token-weighted share of input tokens served from the prefix cache
against the cache capacity in tokens (log axis). Reference lines: the trace's ideal hit
ratio (infinite cache, each session alone) and the mean / p90 input context of a request.
A marker on each curve shows the capacity where it reaches 90 % of its own plateau.
``check_points`` adds block-level LRU simulations (`codesign.kvcache.simulate`, the
ground truth) at a few capacities of the first N, as hollow circles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from codesign.plots.common import (
    PlotInputError,
    plain_log_ticks,
    pyplot,
    save_html,
    save_png,
    short_num,
)
from codesign.workload.schema import Trace

DEFAULT_SESSIONS = (1, 8, 64)
CURVE_POINTS = 240


@dataclass
class CacheCurves:
    name: str
    tier: str
    capacities_tokens: np.ndarray  # (C,)
    hit: dict[int, np.ndarray]  # N -> (C,) hit ratio
    ideal_hit_ratio: float
    mean_context_tokens: float
    p90_context_tokens: float
    block_size_tokens: int
    checks: list[tuple[int, float, float]] = field(default_factory=list)  # (N, cap, hit)

    def knee(self, n: int, share: float = 0.9) -> tuple[float, float] | None:
        """(capacity, hit) where the N curve first reaches ``share`` of its plateau."""
        h = self.hit[n]
        if h[-1] <= 0:
            return None
        i = int(np.argmax(h >= share * h[-1]))
        return float(self.capacities_tokens[i]), float(h[i])


def cache_curves(
    trace: Trace,
    sessions_per_cache: tuple[int, ...] | list[int] = DEFAULT_SESSIONS,
    tier: str | None = None,
    check_points: int = 0,
    seed: int = 0,
) -> CacheCurves:
    """Hit-ratio curves of ``trace`` at each N in ``sessions_per_cache``."""
    from codesign.kvcache import hit_curve, simulate

    ns = sorted({int(n) for n in sessions_per_cache})
    if not ns or ns[0] < 1:
        raise PlotInputError("--sessions-per-cache: give integers >= 1")
    if not trace.has_hashes:
        raise PlotInputError(
            f"trace {trace.meta.name!r} has no block hashes: a hit-ratio curve needs them"
        )
    curve = hit_curve(trace, tier=tier, seed=seed, sessions_grid=ns)
    top = max(float(curve.capacity_grid_tokens[-1]), 10.0 * curve.block_size_tokens)
    caps = np.unique(np.r_[np.geomspace(curve.block_size_tokens, top * 1.5, CURVE_POINTS)])
    hit = {n: np.asarray(curve.hit_ratio(caps, n), dtype=float) for n in ns}
    rows = np.arange(trace.n_requests)
    if tier is not None:
        rows = np.flatnonzero(trace.tier == trace.tier_code(tier))
    ctx = trace.input_tokens[rows].astype(float)
    checks = []
    if check_points > 0:
        for c in np.geomspace(caps[0] * 4, top, check_points):
            r = simulate(trace, [float(c)], ns[0], tier=tier, seed=seed)
            checks.append((ns[0], float(c), r.hit_ratio))
    return CacheCurves(
        name=trace.meta.name,
        tier=curve.tier,
        capacities_tokens=caps,
        hit=hit,
        ideal_hit_ratio=float(curve.ideal_hit_ratio),
        mean_context_tokens=float(ctx.mean()) if ctx.size else 0.0,
        p90_context_tokens=float(np.percentile(ctx, 90)) if ctx.size else 0.0,
        block_size_tokens=curve.block_size_tokens,
        checks=checks,
    )


def _title(c: CacheCurves) -> str:
    tier = "" if c.tier == "all" else f", {c.tier} tier"
    blocks = f"{c.block_size_tokens}-token blocks"
    return f"{c.name}{tier}: prefix-cache hit ratio vs KV capacity ({blocks})"


def cache_figure(c: CacheCurves) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.4))
    cmap = plt.get_cmap("viridis")
    ns = sorted(c.hit)
    for k, n in enumerate(ns):
        col = cmap(0.85 * k / max(len(ns) - 1, 1))
        knee = c.knee(n)
        lab = f"N = {n} session{'s' if n > 1 else ''} per cache"
        if knee:
            lab += f" (90% of plateau at {short_num(knee[0])} tok)"
        ax.plot(c.capacities_tokens, 100 * c.hit[n], c=col, lw=2, label=lab)
        if knee:
            ax.plot([knee[0]], [100 * knee[1]], "o", c=col, ms=6)
    ax.axhline(
        100 * c.ideal_hit_ratio,
        ls="--",
        c="0.3",
        lw=1,
        label=f"ideal {100 * c.ideal_hit_ratio:.1f}% (infinite cache, session alone)",
    )
    for v, lab, ha in (
        (c.mean_context_tokens, "mean", "bottom"),
        (c.p90_context_tokens, "p90", "top"),
    ):
        if v > 0:
            ax.axvline(v, ls=":", c="0.5", lw=1)
            ax.text(
                v,
                30,
                f" {lab} request context {short_num(v)} ",
                fontsize=8,
                color="0.35",
                ha="left",
                va=ha,
                rotation=90,
                rotation_mode="anchor",
            )
    if c.checks:
        ax.plot(
            [x for _, x, _ in c.checks],
            [100 * h for _, _, h in c.checks],
            "o",
            mfc="none",
            mec="black",
            ms=8,
            label=f"block LRU simulation, N = {c.checks[0][0]}",
        )
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlim(c.capacities_tokens[0], c.capacities_tokens[-1])
    ax.set_ylim(0, 100)
    ax.set_xlabel("KV-cache capacity per cache (tokens)")
    ax.set_ylabel("prefix-cache hit ratio (% of input tokens)")
    ax.grid(alpha=0.3, which="major")
    ax.legend(loc="upper left", fontsize=9)
    ax.set_title(_title(c), fontsize=11)
    fig.tight_layout()
    return fig


def write_png(c: CacheCurves, path: str | Path) -> Path:
    return save_png(cache_figure(c), path)


def cache_plotly(c: CacheCurves) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for n in sorted(c.hit):
        fig.add_trace(
            go.Scatter(
                x=c.capacities_tokens,
                y=100 * c.hit[n],
                mode="lines",
                name=f"N = {n}",
                customdata=np.full(c.capacities_tokens.size, n),
                hovertemplate="sessions per cache: %{customdata}<br>capacity: %{x:,.0f} tokens"
                "<br>hit ratio: %{y:.2f}%<extra></extra>",
            )
        )
    if c.checks:
        fig.add_trace(
            go.Scatter(
                x=[x for _, x, _ in c.checks],
                y=[100 * h for _, _, h in c.checks],
                mode="markers",
                marker={"symbol": "circle-open", "size": 10, "color": "black"},
                name=f"block LRU simulation (N = {c.checks[0][0]})",
                hovertemplate="simulation<br>capacity: %{x:,.0f} tokens<br>hit ratio: %{y:.2f}%"
                "<extra></extra>",
            )
        )
    fig.add_hline(
        y=100 * c.ideal_hit_ratio,
        line_dash="dash",
        line_color="#555",
        annotation_text=f"ideal {100 * c.ideal_hit_ratio:.1f}%",
    )
    for v, lab in ((c.mean_context_tokens, "mean"), (c.p90_context_tokens, "p90")):
        if v > 0:
            fig.add_vline(x=v, line_dash="dot", line_color="#888")
            fig.add_annotation(
                x=np.log10(v),
                y=3,
                text=f"{lab} request context",
                showarrow=False,
                xanchor="left",
                font={"size": 10},
            )
    fig.update_xaxes(type="log", title_text="KV-cache capacity per cache (tokens)")
    fig.update_yaxes(range=[0, 100], title_text="prefix-cache hit ratio (% of input tokens)")
    fig.update_layout(title=_title(c), template="plotly_white", height=560, width=950)
    return fig


def write_html(c: CacheCurves, path: str | Path) -> Path:
    return save_html(cache_plotly(c), path)
