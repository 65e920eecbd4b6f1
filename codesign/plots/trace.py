"""Trace overview: one session's context per request over time (the source article's
figure). Top panel: input tokens (the context re-sent) of every request against minutes
since the session start, the primary agent as a line, sub-agents as separate coloured
lines (by agent kind), compactions as red dashed verticals; the shaded part under the
primary agent is the share an infinite prefix cache would already hold. Bottom panel:
the client gap before each request (tool execution vs human think time, log axis) — the
time the KV cache must survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign.plots.common import PlotInputError, pyplot, save_html, save_png, short_num
from codesign.workload.schema import GAP_NAMES, STOP_NAMES, Trace

KIND_COLOURS = ["#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
GAP_COLOURS = {"tool": "#2ca02c", "human": "#d62728", "other": "#7f7f7f", "none": "#bbbbbb"}


@dataclass
class SessionView:
    trace_name: str
    session: int
    session_id: str
    t_min: np.ndarray  # request arrival, minutes since session start
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cached_tokens: np.ndarray  # ideal (infinite-cache) prefix hits
    primary: np.ndarray  # bool
    agent: np.ndarray  # agent index (global)
    kind: np.ndarray  # object: agent kind
    model: list[str]
    compaction: np.ndarray  # bool
    gap_s: np.ndarray
    gap_kind: list[str]
    stop: list[str]


def default_session(trace: Trace) -> int:
    """The session with the most requests (ties: sub-agents, then compactions)."""
    if trace.n_sessions == 0:
        raise PlotInputError("the trace has no sessions")
    s = trace.req_session
    n = np.bincount(s, minlength=trace.n_sessions)
    sub = np.bincount(s, ~trace.req_is_primary, minlength=trace.n_sessions)
    comp = np.bincount(s, trace.compaction, minlength=trace.n_sessions)
    return int(np.lexsort((-comp, -sub, -n))[0])


def session_view(trace: Trace, session: int | None = None) -> SessionView:
    from codesign.workload.prefix import ideal_hit_tokens

    if session is None:
        session = default_session(trace)
    if not 0 <= session < trace.n_sessions:
        raise PlotInputError(
            f"--session {session}: the trace has {trace.n_sessions} sessions "
            f"(0..{trace.n_sessions - 1})"
        )
    rows = np.flatnonzero(trace.req_session == session)
    if rows.size == 0:
        raise PlotInputError(f"session {session} has no requests")
    hits = ideal_hit_tokens(trace)[rows]
    models = trace.meta.models
    return SessionView(
        trace_name=trace.meta.name,
        session=session,
        session_id=str(trace.session_ids[session]),
        t_min=(trace.arrival_s[rows] - trace.session_start_s[session]) / 60.0,
        input_tokens=trace.input_tokens[rows],
        output_tokens=trace.output_tokens[rows],
        cached_tokens=np.minimum(hits, trace.input_tokens[rows]),
        primary=trace.req_is_primary[rows],
        agent=trace.req_agent[rows],
        kind=trace.agent_kind[trace.req_agent[rows]],
        model=[models[m] if 0 <= m < len(models) else "?" for m in trace.model[rows]],
        compaction=trace.compaction[rows].astype(bool),
        gap_s=trace.gap_s[rows],
        gap_kind=[
            GAP_NAMES[g] if 0 <= g < len(GAP_NAMES) else "other" for g in trace.gap_kind[rows]
        ],
        stop=[STOP_NAMES[c] if 0 <= c < len(STOP_NAMES) else "" for c in trace.stop[rows]],
    )


def _title(v: SessionView) -> str:
    n_sub = len(set(v.agent[~v.primary].tolist()))
    return (
        f"{v.trace_name}, session {v.session} ({v.session_id}): {v.t_min.size} requests, "
        f"{n_sub} sub-agents, {int(v.compaction.sum())} compactions, "
        f"peak context {short_num(float(v.input_tokens.max()))} tokens"
    )


def trace_figure(v: SessionView) -> Any:
    plt = pyplot()
    fig, (ax, gx) = plt.subplots(
        2, 1, figsize=(11, 6.8), sharex=True, gridspec_kw={"height_ratios": [2.6, 1]}
    )
    p = v.primary
    ax.fill_between(
        v.t_min[p],
        0,
        v.cached_tokens[p] / 1e3,
        step=None,
        color="tab:blue",
        alpha=0.15,
        lw=0,
        label="primary: prefix already seen (ideal cache)",
    )
    ax.plot(
        v.t_min[p],
        v.input_tokens[p] / 1e3,
        "-o",
        c="tab:blue",
        ms=2.5,
        lw=1.2,
        label=f"primary agent ({v.model[int(np.flatnonzero(p)[0])] if p.any() else '-'})",
    )
    kinds = list(dict.fromkeys(v.kind[~p].tolist()))
    colour = {k: KIND_COLOURS[i % len(KIND_COLOURS)] for i, k in enumerate(kinds)}
    labelled: set[str] = set()
    for a in dict.fromkeys(v.agent[~p].tolist()):
        sel = v.agent == a
        k = v.kind[sel][0]
        first = int(np.flatnonzero(sel)[0])
        ax.plot(
            v.t_min[sel],
            v.input_tokens[sel] / 1e3,
            "-o",
            c=colour[k],
            ms=2.5,
            lw=1,
            label=None if k in labelled else f"sub-agent: {k} ({v.model[first]})",
        )
        labelled.add(k)
    for j, t in enumerate(v.t_min[v.compaction]):
        for a_ in (ax, gx):
            a_.axvline(
                t, c="red", ls="--", lw=1.2, label="compaction" if j == 0 and a_ is ax else None
            )
    ax.set_ylabel("context: input tokens per request (k)")
    ax.set_ylim(0, v.input_tokens.max() / 1e3 * 1.08)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8.5, ncol=2)
    ax.set_title(_title(v), fontsize=10.5)
    gaps = np.asarray(v.gap_s, dtype=float)
    for g in ("tool", "human", "other"):
        sel = np.array([k == g for k in v.gap_kind]) & np.isfinite(gaps) & (gaps > 0)
        if sel.any():
            gx.scatter(v.t_min[sel], gaps[sel], s=9, c=GAP_COLOURS[g], label=f"{g} gap")
    gx.set_yscale("log")
    if np.isfinite(gaps).any() and np.nanmax(gaps) > 0:
        gx.set_ylim(top=np.nanmax(gaps) * 8)
    gx.set_ylabel("gap before\nrequest (s)")
    gx.set_xlabel("minutes since session start")
    gx.grid(alpha=0.3)
    if gx.get_legend_handles_labels()[0]:
        gx.legend(loc="upper left", fontsize=8.5, ncol=3)
    fig.tight_layout()
    return fig


def write_png(v: SessionView, path: str | Path) -> Path:
    return save_png(trace_figure(v), path)


def _hover(v: SessionView, i: int) -> str:
    agent = "primary" if v.primary[i] else f"sub-agent {v.kind[i]} #{int(v.agent[i])}"
    lines = [
        f"<b>request {i}</b> at {v.t_min[i]:.2f} min",
        f"agent: {agent}",
        f"model: {v.model[i]}",
        f"input tokens: {int(v.input_tokens[i]):,}",
        f"prefix already seen: {int(v.cached_tokens[i]):,}",
        f"output tokens: {int(v.output_tokens[i]):,}",
        f"stop: {v.stop[i] or '?'}",
    ]
    g = float(v.gap_s[i])
    if np.isfinite(g):
        lines.append(f"gap before: {g:.1f} s ({v.gap_kind[i]})")
    if v.compaction[i]:
        lines.append("<b>compaction before this request</b>")
    return "<br>".join(lines)


def trace_plotly(v: SessionView) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06
    )
    text = [_hover(v, i) for i in range(v.t_min.size)]
    p = v.primary
    idx = np.flatnonzero(p)
    fig.add_trace(
        go.Scatter(
            x=v.t_min[p],
            y=v.input_tokens[p],
            mode="lines+markers",
            name="primary agent",
            text=[text[i] for i in idx],
            hovertemplate="%{text}<extra></extra>",
            line={"color": "#1f77b4"},
            marker={"size": 4},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=v.t_min[p],
            y=v.cached_tokens[p],
            mode="lines",
            fill="tozeroy",
            name="primary: prefix already seen",
            hoverinfo="skip",
            line={"width": 0},
            fillcolor="rgba(31,119,180,0.15)",
        ),
        row=1,
        col=1,
    )
    kinds = list(dict.fromkeys(v.kind[~p].tolist()))
    colour = {k: KIND_COLOURS[i % len(KIND_COLOURS)] for i, k in enumerate(kinds)}
    shown: set[str] = set()
    for a in dict.fromkeys(v.agent[~p].tolist()):
        sel = np.flatnonzero(v.agent == a)
        k = v.kind[sel[0]]
        fig.add_trace(
            go.Scatter(
                x=v.t_min[sel],
                y=v.input_tokens[sel],
                mode="lines+markers",
                name=f"sub-agent: {k}",
                legendgroup=k,
                showlegend=k not in shown,
                text=[text[i] for i in sel],
                hovertemplate="%{text}<extra></extra>",
                line={"color": colour[k], "width": 1},
                marker={"size": 4},
            ),
            row=1,
            col=1,
        )
        shown.add(k)
    for t in v.t_min[v.compaction]:
        fig.add_vline(x=float(t), line_dash="dash", line_color="red")
    gaps = np.asarray(v.gap_s, dtype=float)
    for g in ("tool", "human", "other"):
        sel = np.flatnonzero(
            np.array([k == g for k in v.gap_kind]) & np.isfinite(gaps) & (gaps > 0)
        )
        if sel.size:
            fig.add_trace(
                go.Scatter(
                    x=v.t_min[sel],
                    y=gaps[sel],
                    mode="markers",
                    name=f"{g} gap",
                    marker={"color": GAP_COLOURS[g], "size": 5},
                    text=[text[i] for i in sel],
                    hovertemplate="%{text}<extra></extra>",
                ),
                row=2,
                col=1,
            )
    fig.update_yaxes(title_text="input tokens per request", row=1, col=1)
    fig.update_yaxes(title_text="gap before (s)", type="log", row=2, col=1)
    fig.update_xaxes(title_text="minutes since session start", row=2, col=1)
    fig.update_layout(
        title=_title(v),
        template="plotly_white",
        height=700,
        width=1100,
        hoverlabel={"align": "left"},
    )
    return fig


def write_html(v: SessionView, path: str | Path) -> Path:
    return save_html(trace_plotly(v), path)
