"""`codesign plot pareto|hypervolume|cache|trace`: PNG (matplotlib) and/or HTML (plotly)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from codesign.cli.common import console, fail, user_errors

plot_app = typer.Typer(
    help="Plots: Pareto front, hypervolume history, prefix-cache hit curve, trace overview.",
    no_args_is_help=True,
)

OUT_OPTION = typer.Option(None, "--out", "-o", help="Write a static PNG here.")
HTML_OPTION = typer.Option(None, "--html", help="Write an interactive HTML (plotly) here.")


def _targets(out: Path | None, html: Path | None) -> None:
    if out is None and html is None:
        fail("give --out FILE.png and/or --html FILE.html")
    if out is not None and out.suffix.lower() != ".png":
        fail(f"--out {out}: expected a .png file name")
    if html is not None and html.suffix.lower() not in (".html", ".htm"):
        fail(f"--html {html}: expected a .html file name")


def _write(
    out: Path | None,
    html: Path | None,
    png: Callable[[Path], Path],
    page: Callable[[Path], Path],
) -> None:
    """Write the PNG and/or the HTML version of a plot and say where."""
    done = [f(path) for f, path in ((png, out), (page, html)) if path is not None]
    console.print("wrote " + ", ".join(str(p) for p in done), highlight=False)


def _load_trace(path: Path):
    from codesign.workload import load_trace

    if not path.exists():
        fail(f"trace not found: {path}")
    return load_trace(path)


@plot_app.command("pareto")
@user_errors
def plot_pareto(
    folder: Path = typer.Argument(..., help="Optimize output folder (pareto.json) or the file."),
    out: Path = OUT_OPTION,
    html: Path = HTML_OPTION,
) -> None:
    """Pareto front: pairwise objective panels, recommended point, SLO region, fidelities."""
    from codesign.plots import pareto, pareto_html

    _targets(out, html)
    data = pareto.load_pareto(folder)
    if not data.points:
        fail(f"{folder}: the Pareto set is empty (no deployment met the constraints)")
    _write(
        out,
        html,
        lambda p: pareto.write_png(data, p),
        lambda p: pareto_html.write_html(data, p),
    )


@plot_app.command("hypervolume")
@user_errors
def plot_hypervolume(
    folder: Path = typer.Argument(..., help="Optimize output folder (progress.jsonl)."),
    out: Path = OUT_OPTION,
    html: Path = HTML_OPTION,
) -> None:
    """Hypervolume and Pareto-set size over evaluations, by search phase."""
    from codesign.plots import hypervolume

    _targets(out, html)
    name, rows = hypervolume.load_progress(folder)
    _write(
        out,
        html,
        lambda p: hypervolume.write_png(rows, p, name),
        lambda p: hypervolume.write_html(rows, p, name),
    )


@plot_app.command("cache")
@user_errors
def plot_cache(
    trace: Path = typer.Argument(..., help="Trace file or folder (any importer's format)."),
    sessions_per_cache: list[int] = typer.Option(
        None, "--sessions-per-cache", "-n", help="N sessions sharing a cache (repeat; 1 8 64)."
    ),
    tier: str = typer.Option(None, "--tier", help="Only this model tier's requests (main, small)."),
    check_points: int = typer.Option(
        0, "--check-points", min=0, max=20, help="Block-LRU simulations to overlay (slow)."
    ),
    out: Path = OUT_OPTION,
    html: Path = HTML_OPTION,
) -> None:
    """Prefix-cache hit ratio vs KV capacity of a workload, one curve per N."""
    from codesign.plots import cache

    _targets(out, html)
    ns = sessions_per_cache or list(cache.DEFAULT_SESSIONS)
    if min(ns) < 1:
        fail("--sessions-per-cache: give integers >= 1")
    curves = cache.cache_curves(_load_trace(trace), ns, tier, check_points)
    _write(
        out,
        html,
        lambda p: cache.write_png(curves, p),
        lambda p: cache.write_html(curves, p),
    )


@plot_app.command("trace")
@user_errors
def plot_trace(
    trace: Path = typer.Argument(..., help="Trace file or folder (any importer's format)."),
    session: int = typer.Option(
        None, "--session", "-s", help="Session index (default: the one with most requests)."
    ),
    out: Path = OUT_OPTION,
    html: Path = HTML_OPTION,
) -> None:
    """One session: context per request over time, main vs sub-agents, compactions, gaps."""
    from codesign.plots import trace as trace_plot

    _targets(out, html)
    view = trace_plot.session_view(_load_trace(trace), session)
    _write(
        out,
        html,
        lambda p: trace_plot.write_png(view, p),
        lambda p: trace_plot.write_html(view, p),
    )
