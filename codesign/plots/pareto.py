"""Pareto-front plots of a search: pairwise objective panels (PNG; the interactive HTML
version is ``pareto_html``).

Input: the search summary (`search.report.summary`, the content of ``pareto.json``):
``objectives`` ("max METRIC" strings), ``constraints`` ({metric: {min, max}}),
``recommended`` (index), ``pareto`` (points with ``params``, ``metrics``, ``deployment``,
``hv_contribution`` and, for points re-checked by the simulator, ``simulated``: the
simulation-fidelity metrics). Every panel shows one pair of objectives: points coloured
by system (prefill → decode system when they differ), shaped by serving mode; the
recommended point as a red star; the 2-D non-dominated points of the panel joined by a
dotted line; SLO bounds on a plotted metric as a dashed line with the violating side
shaded; and, when present, each point's simulation result as a hollow diamond joined to
its analytic point. Constraints on metrics that are not plotted are listed under the
figure (every Pareto point satisfies them).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from codesign.plots.common import (
    PlotInputError,
    metric_label,
    plain_log_ticks,
    pyplot,
    save_png,
    short_num,
    wants_log,
)

MODE_MARKERS = {"agg": "o", "disagg": "s", "afd": "^"}
COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
]


@dataclass
class ParetoData:
    name: str
    objectives: list[tuple[str, str]]  # (metric, "max" | "min")
    constraints: dict[str, dict[str, float]]
    points: list[dict[str, Any]]
    recommended: int | None
    evaluations: int = 0
    hypervolume: float = float("nan")
    groups: list[str] = field(default_factory=list)  # per point: system label

    @property
    def has_simulated(self) -> bool:
        return any(_simulated(p) for p in self.points)


def _simulated(point: dict[str, Any]) -> dict[str, Any]:
    """A point's simulator-fidelity metrics (search writes ``metrics_simulated``)."""
    return point.get("simulated") or point.get("metrics_simulated") or {}


def pareto_data(summary: dict[str, Any]) -> ParetoData:
    """Validate a search summary (``pareto.json`` content) into `ParetoData`."""
    if not isinstance(summary, dict):
        raise PlotInputError("pareto summary: expected a JSON object")
    try:
        objs = []
        for o in summary["objectives"]:
            direction, metric = str(o).split()
            if direction not in ("max", "min"):
                raise ValueError(o)
            objs.append((metric, direction))
        points = list(summary["pareto"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PlotInputError(
            f"pareto summary: needs 'objectives' ('max METRIC' strings) and 'pareto' ({exc})"
        ) from None
    if not objs:
        raise PlotInputError("pareto summary: no objectives")
    for i, p in enumerate(points):
        missing = [m for m, _ in objs if _num(p.get("metrics", {}).get(m)) is None]
        if missing:
            raise PlotInputError(f"pareto point {i}: no value for {', '.join(missing)}")
    rec = summary.get("recommended")
    if rec is not None and not (isinstance(rec, int) and 0 <= rec < len(points)):
        rec = None
    hv = summary.get("hypervolume")
    return ParetoData(
        name=str(summary.get("name", "search")),
        objectives=objs,
        constraints={k: dict(v) for k, v in (summary.get("constraints") or {}).items()},
        points=points,
        recommended=rec,
        evaluations=int(summary.get("evaluations") or 0),
        hypervolume=float(hv) if hv is not None else float("nan"),
        groups=[system_label(p.get("params", {})) for p in points],
    )


def load_pareto(folder: str | Path) -> ParetoData:
    """`ParetoData` from an optimize output folder (its ``pareto.json``)."""
    folder = Path(folder)
    path = folder / "pareto.json" if folder.is_dir() else folder
    if not path.is_file():
        raise PlotInputError(f"{path}: not found (run `codesign optimize SPEC --out DIR`)")
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PlotInputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return pareto_data(summary)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def system_label(params: dict[str, Any]) -> str:
    sys_ = str(params.get("system", "?"))
    dec = params.get("decode_system")
    if dec and dec not in ("same", sys_):
        return f"{sys_} → {dec}"
    return sys_


def deployment_summary(p: dict[str, Any]) -> str:
    """One line: mode, pools (role system workers × tp/dp/ep), precision, spec, KV tier."""
    params = p.get("params", {})
    dep = p.get("deployment", {}) or {}
    pools = []
    for q in dep.get("pools", []):
        par = q.get("parallel", {})
        shape = "".join(f"{k}{par[k]}" for k in ("tp", "dp", "ep") if par.get(k))
        pools.append(
            f"{q.get('role', '?')}: {q.get('system', '?')} {q.get('workers', 1)}× {shape or 'tp1'}"
        )
    parts = [str(params.get("mode", dep.get("mode", "?")))]
    parts.append(" + ".join(pools) if pools else system_label(params))
    prec = dep.get("precision", {})
    gemm = params.get("gemm", prec.get("gemm", "?"))
    kv = params.get("kv", prec.get("kv", ""))
    parts.append(f"{gemm}/{kv}" if kv else str(gemm))
    if params.get("spec", "none") != "none":
        parts.append(f"spec {params['spec']}")
    if params.get("host", "none") != "none":
        parts.append(f"KV host tier {params['host']}")
    if params.get("storage", "none") != "none":
        parts.append(f"KV NVMe tier {params['storage']}")
    return ", ".join(parts)


def _front_2d(xs: list[float], ys: list[float], dx: str, dy: str) -> list[int]:
    """Indices of the 2-D non-dominated points, sorted by x."""
    sx = 1.0 if dx == "min" else -1.0
    sy = 1.0 if dy == "min" else -1.0
    order = sorted(range(len(xs)), key=lambda i: (sx * xs[i], sy * ys[i]))
    keep, best = [], math.inf
    for i in order:
        if sy * ys[i] < best:
            keep.append(i)
            best = sy * ys[i]
    return sorted(keep, key=lambda i: xs[i])


def _pairs(n: int) -> list[tuple[int, int]]:
    return list(combinations(range(n), 2)) or [(0, 0)]


def _bounds_text(constraints: dict[str, dict[str, float]], metrics: list[str]) -> list[str]:
    out = []
    for m, b in constraints.items():
        s = []
        if b.get("min") is not None:
            s.append(f"≥ {b['min']:g}")
        if b.get("max") is not None:
            s.append(f"≤ {b['max']:g}")
        out.append(f"{m} {' and '.join(s)}" + ("" if m in metrics else " (not plotted)"))
    return out


def _lims(vals: list[float], bounds: list[float], log: bool) -> tuple[float, float]:
    lo, hi = min(vals), max(vals)
    for b in bounds:  # show an SLO bound when it is near the data
        near_log = log and b > 0 and lo / 3 <= b <= hi * 3
        if near_log or (not log and abs(b - lo) <= hi - lo + 1e-12):
            lo, hi = min(lo, b), max(hi, b)
    if log:
        pad = (hi / lo) ** 0.06 if hi > lo else 1.5
        return lo / pad, hi * pad
    pad = (hi - lo) * 0.06 or (abs(hi) * 0.1 or 1.0)
    return lo - pad, hi + pad


def pareto_figure(data: ParetoData) -> Any:
    """matplotlib Figure: one panel per pair of objectives."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = pyplot()
    metrics = [m for m, _ in data.objectives]
    pairs = _pairs(len(metrics))
    ncols = min(len(pairs), 3)
    nrows = math.ceil(len(pairs) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(max(5.6 * ncols, 9.0), 4.7 * nrows + 1.3), squeeze=False
    )
    groups = sorted(set(data.groups))
    colour = {g: COLOURS[i % len(COLOURS)] for i, g in enumerate(groups)}
    vals = {m: [float(p["metrics"][m]) for p in data.points] for m in metrics}
    sim = {m: [_num(_simulated(p).get(m)) for p in data.points] for m in metrics}
    logs = {m: wants_log(vals[m] + [v for v in sim[m] if v is not None]) for m in metrics}
    modes = [str(p.get("params", {}).get("mode", "agg")) for p in data.points]
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        ma, mb = metrics[a], metrics[b]
        da, db = data.objectives[a][1], data.objectives[b][1]
        xs, ys = vals[ma], vals[mb]
        if not data.points:
            ax.text(0.5, 0.5, "no Pareto points", ha="center", transform=ax.transAxes)
        else:
            for ax_, m, log in ((ax.xaxis, ma, logs[ma]), (ax.yaxis, mb, logs[mb])):
                bnd = [v for v in data.constraints.get(m, {}).values() if v is not None]
                lo, hi = _lims(vals[m] + [v for v in sim[m] if v is not None], bnd, log)
                if log:
                    (ax.set_xscale if ax_ is ax.xaxis else ax.set_yscale)("log")
                (ax.set_xlim if ax_ is ax.xaxis else ax.set_ylim)(lo, hi)
                if log:
                    plain_log_ticks(ax_)
            _slo_region(ax, data.constraints.get(ma, {}), "x")
            _slo_region(ax, data.constraints.get(mb, {}), "y")
            front = _front_2d(xs, ys, da, db)
            ax.plot([xs[i] for i in front], [ys[i] for i in front], ":", c="0.55", lw=1, zorder=1)
            for i, _p in enumerate(data.points):
                sx, sy = sim[ma][i], sim[mb][i]
                if sx is not None and sy is not None:
                    ax.plot([xs[i], sx], [ys[i], sy], "-", c="0.6", lw=0.8, zorder=1)
                    ax.scatter(
                        [sx],
                        [sy],
                        s=40,
                        marker="D",
                        facecolors="none",
                        edgecolors=colour[data.groups[i]],
                        linewidths=1.2,
                        zorder=2,
                    )
            for g in groups:
                for mode, mk in MODE_MARKERS.items():
                    sel = [i for i in range(len(xs)) if data.groups[i] == g and modes[i] == mode]
                    if sel:
                        ax.scatter(
                            [xs[i] for i in sel],
                            [ys[i] for i in sel],
                            s=30,
                            marker=mk,
                            c=colour[g],
                            edgecolors="white",
                            linewidths=0.4,
                            zorder=3,
                        )
            r = data.recommended
            if r is not None:
                ax.scatter(
                    [xs[r]], [ys[r]], s=260, marker="*", c="red", edgecolors="darkred", zorder=4
                )
        ax.set_xlabel(f"{metric_label(ma)}  [{_better(da, 'x')}]")
        ax.set_ylabel(f"{metric_label(mb)}  [{_better(db, 'y')}]")
        ax.grid(alpha=0.3, which="major")
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    handles = [Patch(color=colour[g], label=g) for g in groups]
    handles += [
        Line2D([], [], ls="", marker=mk, c="0.3", label=mode)
        for mode, mk in MODE_MARKERS.items()
        if mode in modes
    ]
    handles.append(Line2D([], [], ls="", marker="*", ms=14, c="red", label="recommended"))
    handles.append(Line2D([], [], ls=":", c="0.55", label="2-D front of the panel"))
    if data.has_simulated:
        handles.append(
            Line2D(
                [],
                [],
                ls="-",
                marker="D",
                mfc="none",
                c="0.4",
                label="simulation fidelity (hollow) vs analytic",
            )
        )
    if data.constraints:
        handles.append(Patch(facecolor="0.5", alpha=0.2, hatch="//", label="violates SLO"))
    ncol = min(len(handles), 6 if ncols > 1 else 4)
    height = fig.get_size_inches()[1]
    leg_h = 0.3 * math.ceil(len(handles) / ncol) / height  # legend rows, figure fraction
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=ncol,
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    hv = f", hypervolume {data.hypervolume:.4g}" if math.isfinite(data.hypervolume) else ""
    fig.suptitle(
        f"{data.name}: {len(data.points)} Pareto points of {data.evaluations:,} evaluated{hv}",
        fontsize=12,
    )
    bottom = leg_h + 0.02
    if data.constraints:
        fig.text(
            0.5,
            bottom,
            "constraints (every point meets them): "
            + "; ".join(_bounds_text(data.constraints, metrics)),
            ha="center",
            va="bottom",
            fontsize=9,
            color="0.25",
        )
        bottom += 0.3 / height
    fig.tight_layout(rect=(0, bottom + 0.01, 1, 0.96))
    return fig


def _better(direction: str, axis: str) -> str:
    if axis == "x":
        return "higher is better →" if direction == "max" else "← lower is better"
    return "higher is better ↑" if direction == "max" else "lower is better ↓"


def _slo_region(ax: Any, bound: dict[str, float], axis: str) -> None:
    span = ax.axvspan if axis == "x" else ax.axhspan
    line = ax.axvline if axis == "x" else ax.axhline
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    style = {"color": "0.5", "alpha": 0.15, "hatch": "//", "zorder": 0, "lw": 0}
    if bound.get("min") is not None and bound["min"] > lo:
        span(lo, bound["min"], **style)
        line(bound["min"], ls="--", c="0.35", lw=1)
    if bound.get("max") is not None and bound["max"] < hi:
        span(bound["max"], hi, **style)
        line(bound["max"], ls="--", c="0.35", lw=1)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)


def write_png(data: ParetoData | dict[str, Any], path: str | Path) -> Path:
    """Static PNG of the front (``data``: `ParetoData` or a search summary dict)."""
    if not isinstance(data, ParetoData):
        data = pareto_data(data)
    return save_png(pareto_figure(data), path)


__all__ = [
    "ParetoData",
    "deployment_summary",
    "load_pareto",
    "pareto_data",
    "pareto_figure",
    "short_num",
    "write_png",
]
