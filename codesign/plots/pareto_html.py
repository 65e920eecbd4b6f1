"""The Pareto-front panels of ``pareto`` as interactive HTML (plotly): the same panels,
points, fronts and SLO bounds, with each point's deployment and metrics on hover."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from codesign.plots.common import metric_label, save_html, wants_log
from codesign.plots.pareto import (
    COLOURS,
    ParetoData,
    _better,
    _bounds_text,
    _front_2d,
    _num,
    _pairs,
    _simulated,
    deployment_summary,
    pareto_data,
)

PLOTLY_MARKERS = {"agg": "circle", "disagg": "square", "afd": "triangle-up"}
HOVER_METRICS = (
    "tokens_per_s_per_user",
    "tokens_per_s_per_gpu",
    "usd_per_mtok_output",
    "ttft_p90_s",
    "tpot_p50_ms",
    "cache_hit_ratio",
    "chips",
    "usd_per_hour",
    "power_kw",
)


def hover_text(data: ParetoData, i: int) -> str:
    p = data.points[i]
    tag = " (recommended)" if i == data.recommended else ""
    lines = [f"<b>#{i}{tag}</b>", deployment_summary(p)]
    shown = [m for m, _ in data.objectives] + [
        m for m in HOVER_METRICS if m not in {o for o, _ in data.objectives}
    ]
    for m in shown:
        v = _num(p.get("metrics", {}).get(m))
        if v is not None:
            lines.append(f"{m}: {v:.4g}")
    if p.get("hv_contribution") is not None:
        lines.append(f"hv_contribution: {float(p['hv_contribution']):.3g}")
    s = p.get("simulated") or {}
    for m, _ in data.objectives:
        v = _num(s.get(m))
        if v is not None:
            lines.append(f"simulated {m}: {v:.4g}")
    return "<br>".join(lines)


def pareto_plotly(data: ParetoData) -> Any:
    """plotly Figure with the same panels; hover shows the deployment and its metrics."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    metrics = [m for m, _ in data.objectives]
    pairs = _pairs(len(metrics))
    ncols = min(len(pairs), 3)
    nrows = math.ceil(len(pairs) / ncols)
    fig = make_subplots(rows=nrows, cols=ncols, horizontal_spacing=0.08, vertical_spacing=0.14)
    groups = sorted(set(data.groups))
    colour = {g: COLOURS[i % len(COLOURS)] for i, g in enumerate(groups)}
    modes = [str(p.get("params", {}).get("mode", "agg")) for p in data.points]
    texts = [hover_text(data, i) for i in range(len(data.points))]
    vals = {m: [float(p["metrics"][m]) for p in data.points] for m in metrics}
    sim = {m: [_num(_simulated(p).get(m)) for p in data.points] for m in metrics}
    seen: set[str] = set()
    for k, (a, b) in enumerate(pairs):
        row, col = k // ncols + 1, k % ncols + 1
        ma, mb = metrics[a], metrics[b]
        xs, ys = vals[ma], vals[mb]
        for axis, m in (("x", ma), ("y", mb)):
            bound = data.constraints.get(m, {})
            for side in ("min", "max"):
                if bound.get(side) is None or not data.points:
                    continue
                _plotly_slo(fig, go, xs, ys, axis, side, float(bound[side]), m, row, col, seen)
        front = _front_2d(xs, ys, data.objectives[a][1], data.objectives[b][1])
        fig.add_trace(
            go.Scatter(
                x=[xs[i] for i in front],
                y=[ys[i] for i in front],
                mode="lines",
                line={"dash": "dot", "color": "#999", "width": 1},
                hoverinfo="skip",
                name="2-D front of the panel",
                legendgroup="front",
                showlegend="front" not in seen,
            ),
            row=row,
            col=col,
        )
        seen.add("front")
        for g in groups:
            for mode, mk in PLOTLY_MARKERS.items():
                sel = [i for i in range(len(xs)) if data.groups[i] == g and modes[i] == mode]
                if not sel:
                    continue
                key = f"{g} {mode}"
                fig.add_trace(
                    go.Scatter(
                        x=[xs[i] for i in sel],
                        y=[ys[i] for i in sel],
                        mode="markers",
                        marker={
                            "color": colour[g],
                            "symbol": mk,
                            "size": 8,
                            "line": {"color": "white", "width": 0.5},
                        },
                        text=[texts[i] for i in sel],
                        hovertemplate="%{text}<extra></extra>",
                        name=key,
                        legendgroup=key,
                        showlegend=key not in seen,
                    ),
                    row=row,
                    col=col,
                )
                seen.add(key)
        simsel = [i for i in range(len(xs)) if sim[ma][i] is not None and sim[mb][i] is not None]
        if simsel:
            lx, ly = [], []
            for i in simsel:
                lx += [xs[i], sim[ma][i], None]
                ly += [ys[i], sim[mb][i], None]
            fig.add_trace(
                go.Scatter(
                    x=lx,
                    y=ly,
                    mode="lines",
                    line={"color": "#aaa", "width": 1},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup="sim",
                ),
                row=row,
                col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=[sim[ma][i] for i in simsel],
                    y=[sim[mb][i] for i in simsel],
                    mode="markers",
                    marker={
                        "symbol": "diamond-open",
                        "size": 9,
                        "color": [colour[data.groups[i]] for i in simsel],
                    },
                    text=[texts[i] for i in simsel],
                    hovertemplate="<i>simulation fidelity</i><br>%{text}<extra></extra>",
                    name="simulation fidelity",
                    legendgroup="sim",
                    showlegend="sim" not in seen,
                ),
                row=row,
                col=col,
            )
            seen.add("sim")
        r = data.recommended
        if r is not None:
            fig.add_trace(
                go.Scatter(
                    x=[xs[r]],
                    y=[ys[r]],
                    mode="markers",
                    marker={
                        "symbol": "star",
                        "size": 18,
                        "color": "red",
                        "line": {"color": "darkred", "width": 1},
                    },
                    text=[texts[r]],
                    hovertemplate="%{text}<extra></extra>",
                    name="recommended",
                    legendgroup="rec",
                    showlegend="rec" not in seen,
                ),
                row=row,
                col=col,
            )
            seen.add("rec")
        da, db = data.objectives[a][1], data.objectives[b][1]
        fig.update_xaxes(
            title_text=f"{metric_label(ma)} [{_better(da, 'x')}]",
            row=row,
            col=col,
            type="log" if wants_log(xs) else "linear",
        )
        fig.update_yaxes(
            title_text=f"{metric_label(mb)} [{_better(db, 'y')}]",
            row=row,
            col=col,
            type="log" if wants_log(ys) else "linear",
        )
    hv = f", hypervolume {data.hypervolume:.4g}" if math.isfinite(data.hypervolume) else ""
    cons = "; ".join(_bounds_text(data.constraints, metrics))
    title = f"{data.name}: {len(data.points)} Pareto points of {data.evaluations:,} evaluated{hv}"
    if cons:
        title += f"<br><sup>constraints (every point meets them): {cons}</sup>"
    fig.update_layout(
        title=title,
        template="plotly_white",
        height=470 * nrows + 60,
        width=max(560 * ncols, 700),
        hoverlabel={"align": "left"},
        legend={"orientation": "h", "y": -0.18, "x": 0},
    )
    return fig


def _plotly_slo(
    fig: Any,
    go: Any,
    xs: list[float],
    ys: list[float],
    axis: str,
    side: str,
    bound: float,
    metric: str,
    row: int,
    col: int,
    seen: set[str],
) -> None:
    """Shade the side of ``bound`` that violates the constraint, as a filled polygon."""
    other = ys if axis == "x" else xs
    mine = xs if axis == "x" else ys
    o_lo, o_hi = min(other), max(other)
    if side == "min":
        lo, hi = min(min(mine), bound) * (0.9 if min(mine) > 0 else 1), bound
    else:
        lo, hi = bound, max(max(mine), bound) * 1.1
    if axis == "x":
        px, py = [lo, hi, hi, lo, lo], [o_lo, o_lo, o_hi, o_hi, o_lo]
    else:
        px, py = [o_lo, o_hi, o_hi, o_lo, o_lo], [lo, lo, hi, hi, lo]
    op = "≥" if side == "min" else "≤"
    fig.add_trace(
        go.Scatter(
            x=px,
            y=py,
            fill="toself",
            mode="lines",
            fillcolor="rgba(120,120,120,0.15)",
            line={"color": "rgba(80,80,80,0.6)", "dash": "dash", "width": 1},
            hovertemplate=f"SLO {metric} {op} {bound:g}: violated here<extra></extra>",
            name="violates SLO",
            legendgroup="slo",
            showlegend="slo" not in seen,
        ),
        row=row,
        col=col,
    )
    seen.add("slo")


def write_html(data: ParetoData | dict[str, Any], path: str | Path) -> Path:
    """Interactive HTML of the front (hover: deployment summary and metrics)."""
    if not isinstance(data, ParetoData):
        data = pareto_data(data)
    return save_html(pareto_plotly(data), path)


__all__ = ["hover_text", "pareto_plotly", "write_html"]
