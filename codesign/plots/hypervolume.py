"""Hypervolume over the course of a search (from ``progress.jsonl`` or ``pareto.json``).

Top panel: the dominated hypervolume (objectives normalised to fixed ranges, reference
= the worst value of each; see `search.pareto`) against evaluations, the background
shaded by search phase (screen, local/refine, sampler). Bottom panel: Pareto-set size and
feasible candidates. Hover (HTML): evaluations, hypervolume, phase, feasible, Pareto size,
elapsed seconds.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from codesign.plots.common import PlotInputError, pyplot, save_html, save_png, short_num

PHASE_COLOURS = ["#dbe9f6", "#fde0c5", "#d5efd5", "#e8dcf0", "#f6d5e6", "#e0e0e0"]


def progress_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check and sort progress rows (each: evaluations, hypervolume; phase etc. optional)."""
    out = []
    for i, r in enumerate(rows):
        try:
            ev, hv = int(r["evaluations"]), float(r["hypervolume"])
        except (KeyError, TypeError, ValueError):
            raise PlotInputError(
                f"progress row {i + 1}: needs numeric 'evaluations' and 'hypervolume'"
            ) from None
        out.append({**r, "evaluations": ev, "hypervolume": hv if math.isfinite(hv) else 0.0})
    if not out:
        raise PlotInputError("no progress rows: the search evaluated nothing")
    return sorted(out, key=lambda r: r["evaluations"])


def load_progress(folder: str | Path) -> tuple[str, list[dict[str, Any]]]:
    """(job name, rows) from an optimize folder: ``progress.jsonl``, else the
    ``hypervolume_history`` of ``pareto.json``."""
    folder = Path(folder)
    if not folder.exists():
        raise PlotInputError(f"{folder}: not found (run `codesign optimize SPEC --out DIR`)")
    name = folder.name
    summary = folder / "pareto.json" if folder.is_dir() else None
    if summary is not None and summary.is_file():
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            name = str(json.loads(summary.read_text()).get("name", name))
    prog = folder / "progress.jsonl" if folder.is_dir() else folder
    if prog.is_file() and prog.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(prog.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise PlotInputError(f"{prog}:{n}: not a JSON line") from None
        return name, progress_rows(rows)
    if summary is not None and summary.is_file():
        try:
            hist = json.loads(summary.read_text()).get("hypervolume_history")
        except (json.JSONDecodeError, AttributeError):
            raise PlotInputError(f"{summary}: not valid JSON") from None
        if hist:
            return name, progress_rows(hist)
    raise PlotInputError(f"{folder}: no progress.jsonl or pareto.json hypervolume_history")


def _phase_spans(rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    spans: list[tuple[str, int, int]] = []
    start = 0
    for r in rows:
        ph = str(r.get("phase", "search"))
        if spans and spans[-1][0] == ph:
            spans[-1] = (ph, spans[-1][1], r["evaluations"])
        else:
            spans.append((ph, start, r["evaluations"]))
        start = r["evaluations"]
    return spans


def hypervolume_figure(rows: list[dict[str, Any]], name: str = "search") -> Any:
    plt = pyplot()
    rows = progress_rows(rows)
    ev = [r["evaluations"] for r in rows]
    hv = [r["hypervolume"] for r in rows]
    has_size = all("pareto_size" in r for r in rows)
    fig, axes = plt.subplots(
        2 if has_size else 1,
        1,
        figsize=(9, 6.2 if has_size else 4.2),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [2.2, 1] if has_size else [1]},
    )
    ax = axes[0, 0]
    spans = _phase_spans(rows)
    phases = list(dict.fromkeys(p for p, _, _ in spans))
    colour = {p: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, p in enumerate(phases)}
    for a in axes[:, 0]:
        for p, lo, hi in spans:
            a.axvspan(lo, hi, color=colour[p], zorder=0, lw=0)
    ax.step(ev, hv, where="post", c="tab:blue", lw=2, zorder=2, label="hypervolume")
    ax.plot(ev, hv, "o", c="tab:blue", ms=3, zorder=3)
    ax.annotate(
        f"final {hv[-1]:.4g}",
        (ev[-1], hv[-1]),
        xytext=(-4, 7),
        textcoords="offset points",
        ha="right",
        fontsize=9,
        color="tab:blue",
    )
    lo = min(hv)
    ax.set_ylim(lo - (hv[-1] - lo) * 0.08 - 1e-9, hv[-1] + (hv[-1] - lo) * 0.12 + 1e-9)
    ax.set_ylabel("hypervolume (normalised objectives)\naxis zoomed: does not start at 0")
    ax.grid(alpha=0.3)
    from matplotlib.patches import Patch

    ax.legend(
        handles=[Patch(color=colour[p], label=f"phase: {p}") for p in phases],
        loc="lower right",
        fontsize=9,
    )
    elapsed = rows[-1].get("elapsed_s")
    sub = f", {elapsed:.1f} s" if isinstance(elapsed, int | float) else ""
    ax.set_title(f"{name}: hypervolume over {ev[-1]:,} evaluations{sub}")
    if has_size:
        b = axes[1, 0]
        b.step(
            ev, [r["pareto_size"] for r in rows], where="post", c="tab:red", label="Pareto points"
        )
        b.set_ylabel("Pareto points", color="tab:red")
        b.grid(alpha=0.3)
        if all("feasible" in r for r in rows):
            t = b.twinx()
            t.plot(ev, [r["feasible"] for r in rows], c="0.35", ls="--", label="feasible")
            t.set_ylabel("feasible candidates (dashed)", color="0.35")
            t.yaxis.set_major_formatter(lambda v, _: short_num(v))
    axes[-1, 0].set_xlabel("evaluations (candidates)")
    axes[-1, 0].xaxis.set_major_formatter(lambda v, _: short_num(v))
    fig.tight_layout()
    return fig


def write_png(rows: list[dict[str, Any]], path: str | Path, name: str = "search") -> Path:
    return save_png(hypervolume_figure(rows, name), path)


def hypervolume_plotly(rows: list[dict[str, Any]], name: str = "search") -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = progress_rows(rows)
    ev = [r["evaluations"] for r in rows]
    has_size = all("pareto_size" in r for r in rows)
    fig = make_subplots(
        rows=2 if has_size else 1,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.68, 0.32] if has_size else [1.0],
        vertical_spacing=0.06,
    )
    text = [
        "<br>".join(
            [f"evaluations: {r['evaluations']:,}", f"hypervolume: {r['hypervolume']:.5g}"]
            + [
                f"{k}: {r[k]:.4g}" if isinstance(r[k], float) else f"{k}: {r[k]}"
                for k in ("phase", "feasible", "pareto_size", "elapsed_s")
                if k in r
            ]
        )
        for r in rows
    ]
    spans = _phase_spans(rows)
    phases = list(dict.fromkeys(p for p, _, _ in spans))
    colour = {p: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, p in enumerate(phases)}
    for p, lo, hi in spans:
        fig.add_vrect(
            x0=lo,
            x1=hi,
            fillcolor=colour[p],
            line_width=0,
            layer="below",
            annotation_text=p,
            annotation_position="top left",
            annotation_font_size=10,
        )
    fig.add_trace(
        go.Scatter(
            x=ev,
            y=[r["hypervolume"] for r in rows],
            mode="lines+markers",
            line={"shape": "hv", "color": "#1f77b4", "width": 2},
            marker={"size": 4},
            text=text,
            hovertemplate="%{text}<extra></extra>",
            name="hypervolume",
        ),
        row=1,
        col=1,
    )
    if has_size:
        fig.add_trace(
            go.Scatter(
                x=ev,
                y=[r["pareto_size"] for r in rows],
                mode="lines",
                line={"shape": "hv", "color": "#d62728"},
                text=text,
                hovertemplate="%{text}<extra></extra>",
                name="Pareto points",
            ),
            row=2,
            col=1,
        )
        fig.update_yaxes(title_text="Pareto points", row=2, col=1)
    fig.update_yaxes(title_text="hypervolume", row=1, col=1)
    fig.update_xaxes(title_text="evaluations", row=2 if has_size else 1, col=1)
    fig.update_layout(
        title=f"{name}: hypervolume over {ev[-1]:,} evaluations",
        template="plotly_white",
        height=600,
        hovermode="closest",
    )
    return fig


def write_html(rows: list[dict[str, Any]], path: str | Path, name: str = "search") -> Path:
    return save_html(hypervolume_plotly(rows, name), path)
