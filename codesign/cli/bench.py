"""`codesign bench ...`: measured performance figures (reported, never asserted)."""

from __future__ import annotations

import typer

from codesign.cli.common import JSON_OPTION, print_json, print_table, user_errors

bench_app = typer.Typer(help="Benchmarks: measured speed figures.", no_args_is_help=True)


@bench_app.command("evaluate")
@user_errors
def bench_evaluate_command(
    candidates: int = typer.Option(100_000, min=100, help="Candidate deployments."),
    seed: int = typer.Option(0, help="Seed of the mix and the synthetic workload."),
    repeats: int = typer.Option(3, min=1, help="Timed repeats (best is reported)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Agent-workload evaluations per second (analytic evaluator, one core)."""
    from codesign.evaluate_bench import bench_evaluate

    result = bench_evaluate(candidates, seed=seed, repeats=repeats)
    if as_json:
        print_json(result)
        return
    print_table(
        "bench evaluate (deployments on an agent workload)",
        ["figure", "value"],
        list(result.items()),
    )


@bench_app.command("perf")
@user_errors
def bench_perf_command(
    candidates: int = typer.Option(100_000, min=100, help="Candidates in the mix."),
    seed: int = typer.Option(0, help="Seed of the random mix."),
    repeats: int = typer.Option(3, min=1, help="Timed repeats (best is reported)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Candidate evaluations per second of the analytic performance model (one core)."""
    from codesign.perf.bench import bench_perf

    result = bench_perf(candidates, seed, repeats)
    if as_json:
        print_json(result)
        return
    print_table(
        "bench perf (step model + closed-loop serving)", ["figure", "value"], list(result.items())
    )


@bench_app.command("api")
@user_errors
def bench_api_command(
    job: int = typer.Option(..., "--job", help="A completed job whose Pareto set is queried."),
    server: str = typer.Option("http://127.0.0.1:8000", "--server", envvar="CODESIGN_SERVER"),
    api_key: str = typer.Option(None, "--api-key", envvar="CODESIGN_API_KEY"),
    clients: int = typer.Option(50, "--clients", min=1, max=1000),
    duration: float = typer.Option(10.0, "--duration", min=0.5, max=600, help="Seconds."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Pareto queries at CLIENTS concurrent clients for DURATION seconds against a running
    server: requests/s and latency percentiles (loopback; target p99 < 100 ms)."""
    from api.loadtest import run_load

    result = run_load(server, job, clients, duration, api_key)
    if as_json:
        print_json(result)
        return
    print_table("bench api (Pareto queries)", ["figure", "value"], list(result.items()))
