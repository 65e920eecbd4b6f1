"""`codesign evaluate`: one or more deployments on an agent trace (analytic fidelity)."""

from __future__ import annotations

from pathlib import Path

import typer

from codesign.cli.common import JSON_OPTION, console, print_json, print_table, user_errors


@user_errors
def evaluate_command(
    deployments: list[Path] = typer.Argument(..., help="Deployment YAML file(s)."),
    trace: Path = typer.Option(..., "--trace", "-t", help="Trace file or folder."),
    fmt: str = typer.Option(None, "--format", help="Trace format (default: detected)."),
    sessions: float = typer.Option(
        64, "--sessions", "-n", min=1, help="Concurrent agent sessions served."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Serve the trace's agent sessions on each deployment: latency, throughput, cache hits,
    session time, cost, power. Sub-agent requests run on the sub-agent pools when a
    deployment has them, else on the main pools."""
    from codesign.deployment import Deployment
    from codesign.evaluate import METRICS, evaluate
    from codesign.perf.calibration import load_calibration
    from codesign.perf.deployment_band import deployment_error_band
    from codesign.workload import load_trace
    from codesign.workload.agent_load import agent_load, session_gaps
    from codesign.workload.summary import summarize

    deps = [Deployment.from_file(p) for p in deployments]
    tr = load_trace(trace, fmt)
    summary = summarize(tr)
    gaps = session_gaps(tr)
    calib = load_calibration()
    results, bands = [], []
    for dep in deps:  # the tier split depends on whether sub-agents have their own pools
        load = agent_load(summary, gaps, merge_tiers=dep.subagents is None)
        out = evaluate([dep], load, sessions, calib)
        r = {m: out[m][0] for m in (*METRICS, "feasible", "reason")}
        results.append(r)
        bands.append(deployment_error_band(dep, r, calib) if r["feasible"] else None)
    if as_json:
        print_json(
            [
                {"deployment": str(p), **r, "error_band": b}
                for p, r, b in zip(deployments, results, bands, strict=True)
            ]
        )
        return
    console.print(
        f"{tr.n_sessions} sessions, {tr.n_requests} requests in {trace}; "
        f"{sessions:g} concurrent sessions",
        highlight=False,
    )
    print_table(
        "Deployments on the agent workload",
        ["metric", *[p.name for p in deployments]],
        [(m, *[r[m] for r in results]) for m in (*METRICS, "feasible", "reason")],
    )
    _print_bands(deployments, bands)


def _print_bands(deployments: list[Path], bands: list[dict | None]) -> None:
    """Each deployment's latency ranges from the calibration's error band."""
    from codesign.perf.deployment_band import band_text

    for p, b in zip(deployments, bands, strict=True):
        if b is not None:
            console.print(f"{p.name}: {band_text(b)}", highlight=False)
