"""`codesign trace synth` and `codesign trace compare`: generated agent sessions and how
closely two traces' distributions agree."""

from __future__ import annotations

from pathlib import Path

import typer

from codesign.cli.common import JSON_OPTION, print_json, print_table, user_errors
from codesign.cli.trace import FORMAT_HELP, read_trace, trace_app
from codesign.errors import SpecError
from codesign.workload import trace_stats
from codesign.workload.io import save_trace


@trace_app.command("synth")
@user_errors
def synth_cmd(
    preset_name: str = typer.Option(
        "claude-code-fleet",
        "--preset",
        "-p",
        help="claude-code-session, claude-code-fleet, chat or tool-agent.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output: *.jsonl[.gz] or *.parquet."),
    sessions: int | None = typer.Option(None, "--sessions", "-n", help="Sessions (preset's)."),
    seed: int = typer.Option(0, "--seed", "-s", help="Seed: the same seed gives the same trace."),
    params_file: Path | None = typer.Option(
        None, "--params", help="SynthParams JSON file instead of a preset."
    ),
    fit_from: Path | None = typer.Option(
        None, "--fit-from", help="Fit the parameters to this real trace (claude-code format)."
    ),
    arrival_rate: float | None = typer.Option(
        None, "--sessions-per-s", help="Poisson session starts at this rate (default: preset's)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Generate synthetic agent sessions from a preset (or fitted/explicit parameters)."""
    from codesign.workload.synth import SynthParams, fit_fleet_params, generate, preset

    if fit_from is not None:
        params = fit_fleet_params(read_trace(fit_from, None, quiet=as_json))
    elif params_file is not None:
        params = SynthParams.model_validate_json(params_file.read_text())
    else:
        params = preset(preset_name)
    params = params.with_overrides(sessions=sessions, seed=seed)
    if arrival_rate is not None:
        params = params.model_copy(
            update={
                "arrival": params.arrival.model_copy(
                    update={"process": "poisson", "sessions_per_s": arrival_rate}
                )
            }
        )
        params = SynthParams.model_validate(params.model_dump())
    trace = generate(params)
    path = save_trace(trace, out)
    s = trace_stats(trace)
    info = {
        "out": str(path),
        "preset": params.name,
        "seed": params.seed,
        "sessions": trace.n_sessions,
        "requests": trace.n_requests,
        "main_agent_requests": s["trace"]["main_agent_requests"],
        "sub_agent_requests": s["trace"]["sub_agent_requests"],
        "input_tokens_total": s["trace"]["input_tokens_total"],
        "ideal_hit_ratio": s["prefix"]["ideal_hit_ratio"],
    }
    if as_json:
        print_json(info)
    else:
        print_table(
            f"synthetic trace {path}", ["figure", "value"], [[k, v] for k, v in info.items()]
        )


@trace_app.command("compare")
@user_errors
def compare_cmd(
    a: Path = typer.Argument(..., help="First trace file or folder (e.g. synthetic)."),
    b: Path = typer.Argument(..., help="Second trace file or folder (e.g. real)."),
    max_ks: float = typer.Option(0.1, "--max-ks", help="Pass when KS statistic <= this."),
    fmt_a: str | None = typer.Option(None, "--format-a", help=FORMAT_HELP),
    fmt_b: str | None = typer.Option(None, "--format-b", help=FORMAT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Two-sample KS statistic per distribution (context, output, gaps, turns, compaction,
    sub-agents, model tier, static prefix) of trace A vs trace B; exit 1 when one fails."""
    from codesign.workload.compare import compare

    if not 0 < max_ks <= 1:
        raise SpecError(f"--max-ks: {max_ks} is not in (0, 1]")
    res = compare(read_trace(a, fmt_a, as_json), read_trace(b, fmt_b, as_json), max_ks)
    if as_json:
        print_json(res)
    else:
        print_table(
            f"{res['a']} vs {res['b']}: KS <= {max_ks}",
            ["distribution", "n A", "n B", "median A", "median B", "KS", "status"],
            [
                [
                    r["distribution"],
                    r["n_a"],
                    r["n_b"],
                    r["median_a"],
                    r["median_b"],
                    r["ks"],
                    r["status"],
                ]
                for r in res["distributions"]
            ],
        )
    if not res["passed"]:
        raise typer.Exit(1)
