"""`codesign optimize SPEC.yaml` and `codesign bench search`: the co-design search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from codesign.cli.common import JSON_OPTION, console, fail, print_json, print_table, user_errors

TABLE_ROWS = 20


@user_errors
def optimize_command(
    spec: Path = typer.Argument(..., help="Job spec (YAML or JSON)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for the result files."),
    executor: str = typer.Option(
        None, "--executor", help="inline | ray (default: the spec's strategy.executor)."
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else local)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the interrupted job stored in --out."
    ),
    optuna_storage: str = typer.Option(
        None, "--optuna-storage", help="Export the study to this Optuna storage URL."
    ),
    db: str = typer.Option(
        None,
        "--db",
        help="Also store the run as a job in this service database (sqlite:///PATH or "
        "postgresql+psycopg://...): the REST API and SDK then serve its Pareto set.",
    ),
    compare_aic: Path = typer.Option(
        None,
        "--compare-aiconfigurator",
        help="aiconfigurator --save-dir: sweep the fixed workload's concurrency, time it and "
        "plot both fronts into OUT/fronts.png (instead of the single search).",
    ),
    aic_venv: Path = typer.Option(
        None, "--aiconfigurator-venv", help="With --compare-aiconfigurator: run and time it first."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search the job's space for the Pareto-optimal deployments of its agent workload;
    print the Pareto table and the recommended deployment; write pareto.csv, pareto.json,
    pareto.png, recommended.yaml and evaluations.csv into --out. With
    strategy.verify_top: K the K best front points are also simulated (both values shown).
    See search.executor for running on a Ray cluster (RAY_AUTH_TOKEN)."""
    from search.sink import FileSink
    from search.spec import JobSpec

    if executor not in (None, "inline", "ray"):
        fail(f"--executor {executor}: use inline or ray")
    job = JobSpec.from_file(spec)
    update = {"executor": executor or job.strategy.executor}
    if ray_address:
        update["ray_address"] = ray_address
    job = job.model_copy(update={"strategy": job.strategy.model_copy(update=update)})
    out = out or Path(f"{job.name}-results")
    if compare_aic is not None:
        _compare(job, compare_aic, out, aic_venv, as_json)
        return
    if resume and not (out / "progress.jsonl").is_file():
        fail(f"--resume: nothing to resume in {out} (no progress.jsonl)")
    files = FileSink(out, resume=resume)
    sink: Any = files
    dbjob = None
    if db:
        if resume:
            fail("--db with --resume: resume the file run, or submit the job to the service")
        from api.cli_job import DBJob
        from search.sink import TeeSink

        dbjob = DBJob(db, job)
        sink = TeeSink(files, dbjob.sink)
    try:
        result = _run(job, sink, files.stored, as_json)
    except KeyboardInterrupt:
        if dbjob:
            dbjob.finish("cancelled", stopped="cancelled")
        raise
    except Exception as exc:
        if dbjob:
            dbjob.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if dbjob:
        status = "cancelled" if result.stopped == "cancelled" else "completed"
        dbjob.finish(status, stopped=result.stopped)
    _report(result, job, out, optuna_storage, as_json, dbjob.id if dbjob else None)


def _run(job: Any, sink: Any, stored: Any, as_json: bool) -> Any:
    from search.driver import Search

    if as_json:
        result = Search(job, sink=sink, resume=stored).run()
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        cols = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
        )
        with console.status("building the workload (trace summary, hit-ratio curves)"):
            search = Search(job, sink=sink, resume=stored)
        with Progress(*cols, console=console, transient=False) as bar:
            task = bar.add_task(job.name, total=job.strategy.budget, info="")

            def show(p: object) -> None:
                bar.update(
                    task,
                    completed=p.evaluations,  # type: ignore[attr-defined]
                    info=f"{p.phase} feasible {p.feasible:,} pareto {p.pareto_size} "  # type: ignore[attr-defined]
                    f"HV {p.hypervolume:.4g}",  # type: ignore[attr-defined]
                )

            search.on_progress = show
            result = search.run()
            bar.update(task, completed=job.strategy.budget)
    return result


def _report(
    result: Any, job: Any, out: Path, optuna_storage: str | None, as_json: bool, db_id: int | None
) -> None:
    from codesign.perf.deployment_band import band_text
    from search.report import summary, write_outputs

    data = summary(result)  # pareto.json's content, error bands included
    files = write_outputs(result, out, data)
    if optuna_storage:
        from search.export import export_study

        export_study(result.spec, out / "evaluations.csv", optuna_storage)
    if as_json:
        data["files"] = {k: str(v) for k, v in files.items()}
        data["db_job"] = db_id
        print_json(data)
        return
    if db_id is not None:
        console.print(f"stored as job {db_id} in the service database", highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(
        f"{result.evaluations:,} evaluations ({result.feasible:,} feasible) of a "
        f"{result.space_size:,}-configuration space in {result.elapsed_s:.1f} s; stopped: "
        f"{result.stopped}; hypervolume {result.hypervolume:.4g}",
        highlight=False,
    )
    if not result.front:
        fail("no deployment satisfies the constraints; relax them or widen the space", 1)
    metrics = [o.metric for o in job.objectives]
    extra = [m for m in ("ttft_p90_s", "chips", "usd_per_mtok_output") if m not in metrics]
    rows = []
    for i, p in enumerate(result.front[:TABLE_ROWS]):
        d = p.deployment
        pools = " + ".join(
            f"{q.role[0]}:{q.system}{'*' if q.hardware else ''} {q.workers}x"
            f"tp{q.parallel.tp}dp{q.parallel.dp}" + (f"ep{q.parallel.ep}" if q.parallel.ep else "")
            for q in d.pools
        )
        spec_dec = p.params.get("spec", "none")
        cfg = f"{d.mode} {pools} {d.precision.gemm}/{d.precision.kv} {spec_dec}"
        if d.subagents is not None:  # sub-agent pools (subagent_model)
            cfg += " | sub " + " + ".join(
                f"{q.system} {q.workers}xtp{q.parallel.tp}" for q in d.subagents.pools
            )
        rows.append([i, cfg, *(p.metrics[m] for m in (*metrics, *extra))])
        if p.metrics_simulated:  # verify_top: the simulator's values under the analytic ones
            mark = "on" if p.pareto_simulated else "off"
            sim = [p.metrics_simulated.get(m, float("nan")) for m in (*metrics, *extra)]
            rows.append(["", f"  simulated ({mark} the simulated front)", *sim])
    print_table(
        f"Pareto set ({len(result.front)} points, best first by {metrics[0]})",
        ["#", "deployment", *metrics, *extra],
        rows,
    )
    v = result.verification
    if v:
        console.print(
            f"verified {len(v['verified'])} points by simulation ({v['concurrent_sessions']} "
            f"concurrent, {v['replayed_sessions']} sessions replayed, {v['executor']}, "
            f"{v['seconds']:.1f} s): hypervolume {v['hypervolume_analytic']:.4g} analytic, "
            f"{v['hypervolume_simulated']:.4g} simulated",
            highlight=False,
        )
    if result.resumed_batches:
        console.print(f"resumed: {result.resumed_batches} stored batches replayed", highlight=False)
    rec = data["recommended"]
    console.print(
        f"[bold]recommended[/] (#{rec}: best {metrics[0]} on the front, ties by cost):",
        highlight=False,
    )
    console.print(result.front[rec].deployment.to_yaml(), highlight=False)  # type: ignore[index]
    band = data["pareto"][rec]["error_band"]
    if band is not None:
        console.print(f"recommended: {band_text(band)}", highlight=False)
    console.print("wrote " + ", ".join(str(v) for v in files.values()), highlight=False)


def _compare(job: object, aic_dir: Path, out: Path, venv: Path | None, as_json: bool) -> None:
    from search.aic_compare import compare_fronts

    r = compare_fronts(job, aic_dir, out, aic_venv=venv)  # type: ignore[arg-type]
    if as_json:
        print_json(r)
        return
    a, c = r["aiconfigurator"], r["codesign"]
    wall = f"{a['wall_s']:.2f} s" if a["wall_s"] else "not timed (give --aiconfigurator-venv)"
    console.print(
        f"aiconfigurator: {wall}, {a['points']} points within the SLA, front {len(a['front'])}\n"
        f"codesign: {c['wall_s']:.3f} s wall ({c['search_s']:.3f} s searching, "
        f"{c['evaluations']:,} evaluations over {len(r['concurrencies'])} concurrencies), "
        f"front {len(c['front'])}",
        highlight=False,
    )
    if "speedup_wall" in r:
        console.print(
            f"speed-up: {r['speedup_wall']:.0f}x wall, {r['speedup_search']:.0f}x search-only",
            highlight=False,
        )
    console.print(f"wrote {r['png']}", highlight=False)


@user_errors
def bench_search(
    fraction: float = typer.Option(0.05, min=0.0001, max=1.0, help="Budget / space size."),
    samplers: str = typer.Option("auto,tpe,nsga2,random", help="Comma-separated samplers."),
    seed: int = typer.Option(0, help="Seed of the samplers."),
    ray: bool = typer.Option(
        False, "--ray", help="Instead: speed-up of executor ray over inline for simulations."
    ),
    as_json: bool = JSON_OPTION,
) -> dict:
    """Hypervolume share of the exhaustive front per sampler (enumerable space); with
    --ray the speed-up of Ray tasks over inline for simulation-fidelity evaluation."""
    from search.bench import bench_ray_verify
    from search.bench import bench_search as run_bench

    if ray:
        data = bench_ray_verify()
        if as_json:
            print_json(data)
        else:
            print_table(
                "bench search --ray (verify_top simulations)",
                ["figure", "value"],
                list(data.items()),
            )
        return data

    result = run_bench(tuple(s.strip() for s in samplers.split(",")), fraction, seed)
    if as_json:
        print_json(result)
        return result
    console.print(
        f"space {result['space_size']:,} configurations; exhaustive front "
        f"{result['exhaustive']['pareto_size']} points in {result['exhaustive']['seconds']:.2f} s",
        highlight=False,
    )
    print_table(
        "bench search",
        ["sampler", "evaluations", "HV share", "pareto", "seconds", "evals/s"],
        [
            [
                k,
                v["evaluations"],
                v["hypervolume_share"],
                v["pareto_size"],
                v["seconds"],
                v["evaluations_per_s"],
            ]
            for k, v in result.items()
            if k not in ("space_size", "exhaustive")
        ],
    )
    return result
