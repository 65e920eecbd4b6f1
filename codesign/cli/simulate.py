"""`codesign simulate` and `codesign bench simulate`: discrete-event replay of an agent trace
on a deployment, optionally beside the analytic evaluator."""

from __future__ import annotations

from pathlib import Path

import typer

from codesign.cli.common import JSON_OPTION, console, print_json, print_table, user_errors
from codesign.errors import SpecError


def _trace(
    trace: Path | None, synth: str | None, fmt: str | None, seed: int, synth_sessions: int | None
):
    if (trace is None) == (synth is None):
        raise SpecError("give exactly one of --trace PATH or --synth PRESET")
    if trace is not None:
        from codesign.workload import load_trace

        return load_trace(trace, fmt)
    from codesign.workload.synth import generate, preset

    return generate(preset(synth).with_overrides(sessions=synth_sessions, seed=seed))


@user_errors
def simulate_command(
    deployment: Path = typer.Option(..., "--deployment", "-d", help="Deployment YAML file."),
    trace: Path | None = typer.Option(None, "--trace", "-t", help="Trace file or folder."),
    synth: str | None = typer.Option(
        None, "--synth", help="Synthetic preset instead of a trace (see `codesign trace synth`)."
    ),
    synth_sessions: int | None = typer.Option(
        None, "--synth-sessions", min=1, help="Sessions to generate for --synth (preset's)."
    ),
    fmt: str | None = typer.Option(None, "--format", help="Trace format (default: detected)."),
    sessions: int = typer.Option(64, "--sessions", "-n", min=1, help="Concurrent sessions."),
    total_sessions: int | None = typer.Option(
        None, "--total-sessions", min=1, help="Sessions to replay (default: max(trace, 16 N))."
    ),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed (session order, synthetic trace)."),
    compare: bool = typer.Option(
        False, "--compare-analytic", help="Also run the analytic evaluator and compare."
    ),
    requests_out: Path | None = typer.Option(
        None, "--requests-out", help="Write per-request records (TTFT, TPOT, tier, worker) CSV."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replay agent sessions on a deployment: continuous batching, chunked prefill, KV cache
    tiers and routing, step by step; the evaluator's metrics plus per-request records."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from codesign.deployment import Deployment
    from codesign.simulate import SimOptions, simulate

    dep = Deployment.from_file(deployment)
    tr = _trace(trace, synth, fmt, seed, synth_sessions)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("sim", total=1.0)
        opts = SimOptions(
            sessions=sessions,
            total_sessions=total_sessions,
            seed=seed,
            progress=lambda f: bar.update(task, completed=f),
        )
        res = simulate(dep, tr, options=opts)
    wall = time.perf_counter() - t0
    info = {
        "deployment": str(deployment),
        "trace": str(trace or f"synth:{synth}"),
        "sessions": sessions,
        "sessions_replayed": res.sessions_started,
        "requests": res.n_requests,
        "wall_s": round(wall, 3),
        "requests_per_s_wall": round(res.n_requests / max(wall, 1e-9), 1),
        "window_s": list(res.window_s),
        "notes": res.notes,
    }
    report = compare_report(res, dep, tr, sessions) if compare else None
    if requests_out is not None:
        _write_requests(res, requests_out)
    if as_json:
        print_json(
            {
                **info,
                "metrics": res.metrics,
                "diagnostics": res.diagnostics,
                **({"compare": report} if report else {}),
            }
        )
        return
    console.print(
        f"{res.n_requests:,} requests of {res.sessions_started} sessions "
        f"({sessions} concurrent) in {wall:.2f} s",
        highlight=False,
    )
    for note in res.notes:
        console.print(f"note: {note}", highlight=False)
    if report is None:
        print_table("Simulation", ["metric", "value"], list(res.metrics.items()))
        return
    print_table(
        "Simulation vs analytic",
        ["metric", "simulation", "analytic", "sim/analytic-1"],
        [(r["metric"], r["simulation"], r["analytic"], r["rel_diff"]) for r in report["rows"]],
    )
    print_table("Why they differ (measured)", ["figure", "value"], list(report["explain"].items()))


def compare_report(res, dep, tr, sessions: int) -> dict:
    from codesign.simulate.compare import compare_analytic

    return compare_analytic(res, dep, tr, sessions)


def _write_requests(res, path: Path) -> None:
    import numpy as np

    cols = [
        "trace_idx",
        "copy",
        "part",
        "worker",
        "t_issue",
        "ttft_s",
        "tpot_s",
        "n_in",
        "n_out",
        "cached",
        "host_tok",
        "sto_tok",
        "shared_tok",
        "hit_tier",
    ]
    data = np.column_stack([res.requests[c].astype(np.float64) for c in cols])
    np.savetxt(path, data, delimiter=",", header=",".join(cols), comments="", fmt="%.6g")


@user_errors
def bench_simulate(
    requests: int = typer.Option(200_000, min=1000, help="Simulated requests to run."),
    seed: int = typer.Option(0, help="Seed of the synthetic trace and session order."),
    sessions: int = typer.Option(64, min=1, help="Concurrent sessions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Simulated requests per second of the discrete-event simulator (one core)."""
    from codesign.simulate.bench import bench_simulate as run_bench

    result = run_bench(requests, seed, sessions)
    if as_json:
        print_json(result)
        return
    print_table("bench simulate (event loop)", ["figure", "value"], list(result.items()))
