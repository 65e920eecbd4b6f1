"""`codesign jobs ...`: submit, follow and read search jobs on a codesign server (REST API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from codesign.cli.common import (
    JSON_OPTION,
    console,
    err_console,
    fail,
    fmt_num,
    print_json,
    print_table,
    user_errors,
)

jobs_app = typer.Typer(
    help="Search jobs on a codesign server (`codesign serve`): submit, follow, results, export.",
    no_args_is_help=True,
)

DEFAULT_SERVER = "http://127.0.0.1:8000"
SERVER_OPTION = typer.Option(
    DEFAULT_SERVER, "--server", envvar="CODESIGN_SERVER", help="Server URL (env CODESIGN_SERVER)."
)
API_KEY_OPTION = typer.Option(
    None, "--api-key", envvar="CODESIGN_API_KEY", help="API key (env CODESIGN_API_KEY)."
)
ID_ARG = typer.Argument(..., help="Job id.")
EXTRA_METRICS = ("ttft_p90_s", "chips", "usd_per_mtok_output")
TABLE_ROWS = 50


def _client(server: str, api_key: str | None) -> Any:
    from codesign.client import Client

    return Client(server, api_key=api_key)


def _job(c: Any, job_id: int) -> Any:
    """A handle on job ``job_id`` without fetching it (for calls that return the job)."""
    from codesign.client import Job

    return Job(c, {"id": job_id, "status": "unknown"})


def _follow(job: Any, as_json: bool, timeout: float | None = None) -> Any:
    """Wait for the job (progress bar on stderr unless --json); Ctrl-C leaves it running.
    A failed job is returned (the caller prints it and exits 1)."""
    from codesign.client import JobFailed

    try:
        return job.wait(progress=not as_json, timeout=timeout)
    except JobFailed as exc:
        return exc.job
    except KeyboardInterrupt:
        fail(
            f"stopped following job {job.id}; it keeps running on the server "
            f"(codesign jobs wait {job.id}, or codesign jobs cancel {job.id})",
            130,
        )
    except TimeoutError as exc:
        fail(str(exc), 1)
    raise AssertionError("unreachable")


def _summary(job: Any, as_json: bool) -> None:
    """Print the job (JSON, or a few lines); exit 1 when it failed."""
    if as_json:
        print_json(job.data)
    else:
        _print_summary(job)
    if job.status == "failed":
        raise typer.Exit(1)


def _print_summary(job: Any) -> None:
    d = job.data
    line = (
        f"job {job.id} {job.name}: [bold]{job.status}[/]; {fmt_num(d.get('evaluations'))} "
        f"evaluations, {fmt_num(job.progress.get('feasible'))} feasible, Pareto "
        f"{fmt_num(d.get('pareto_size'))} points, hypervolume {fmt_num(d.get('hypervolume'), 4)}"
    )
    if d.get("stopped"):
        line += f"; stopped: {d['stopped']}"
    console.print(line, highlight=False)
    if d.get("error"):
        console.print(f"[red]error:[/] {d['error']}", highlight=False)
    if d.get("recommended") is not None:
        console.print(
            f"recommended: candidate {d['recommended']} (codesign jobs pareto {job.id}; "
            f"codesign jobs export {job.id} --candidate {d['recommended']} --format vllm)",
            highlight=False,
        )


def _objectives(job: Any) -> list[str]:
    """The job's objective metrics (specs write them as 'max M' or {direction, metric})."""
    out = []
    for o in (job.data.get("spec") or {}).get("objectives") or []:
        out.append(o.get("metric") if isinstance(o, dict) else str(o).split()[-1])
    return [m for m in out if m]


def deployment_summary(dep: dict[str, Any] | None) -> str:
    """One line for a deployment dict: mode, pools (role:system workers x tp/dp/ep),
    precision and speculative decoding."""
    if not dep:
        return "-"
    pools = []
    for q in dep.get("pools") or []:
        par = q.get("parallel") or {}
        ep = f"ep{par['ep']}" if par.get("ep") else ""
        pools.append(
            f"{str(q.get('role', '?'))[0]}:{q.get('system', '?')}{'*' if q.get('hardware') else ''}"
            f" {q.get('workers', 1)}xtp{par.get('tp', 1)}dp{par.get('dp', 1)}{ep}"
        )
    prec = dep.get("precision") or {}
    spec = dep.get("spec_decoding") or {}
    sd = spec.get("method") or "none"
    if sd != "none" and spec.get("draft_tokens"):
        sd += str(spec["draft_tokens"])
    precision = f"{prec.get('gemm') or 'ckpt'}/{prec.get('kv', '?')}"
    return f"{dep.get('mode', '?')} {' + '.join(pools)} {precision} {sd}"


@jobs_app.command("submit")
@user_errors
def submit_command(
    spec: str = typer.Argument(..., help="Job spec file (YAML or JSON); workload.trace: trace:ID."),
    idempotency_key: str = typer.Option(
        None, "--idempotency-key", help="Submitting again with this key returns the same job."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it finishes."),
    server: str = SERVER_OPTION,
    api_key: str = API_KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Queue a search job; print its id (with --wait: follow it, then print the summary)."""
    if not Path(spec).is_file():
        fail(f"file not found: {spec}")
    with _client(server, api_key) as c:
        job = c.submit(Path(spec), idempotency_key=idempotency_key)
        if not as_json:
            typer.echo(job.id)
            if not wait:
                err_console.print(
                    f"job {job.id} {job.status}; follow it with: codesign jobs wait {job.id}",
                    highlight=False,
                )
        if wait:
            _summary(_follow(job, as_json), as_json)
        elif as_json:
            print_json(job.data)


@jobs_app.command("list")
@user_errors
def list_command(
    status: str = typer.Option(
        None, "--status", help="Only jobs with this status (queued, running, completed, ...)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many jobs, newest first."),
    server: str = SERVER_OPTION,
    api_key: str = API_KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List jobs, newest first."""
    with _client(server, api_key) as c:
        jobs = c.jobs(status=status, limit=limit)
    if as_json:
        print_json([j.data for j in jobs])
        return
    rows = [
        [
            j.id,
            j.name,
            j.status,
            j.data.get("evaluations"),
            j.data.get("pareto_size"),
            j.data.get("hypervolume"),
            str(j.data.get("created_at") or "-")[:19].replace("T", " "),
        ]
        for j in jobs
    ]
    print_table(
        f"jobs on {server} ({len(rows)})",
        ["id", "name", "status", "evaluations", "pareto size", "HV", "created (UTC)"],
        rows,
    )


@jobs_app.command("show")
@user_errors
def show_command(
    job_id: int = ID_ARG,
    server: str = SERVER_OPTION,
    api_key: str = API_KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one job: status, times, progress, result summary, error."""
    with _client(server, api_key) as c:
        job = c.job(job_id)
    if as_json:
        print_json(job.data)
        return
    d = job.data
    keys = ("owner", "created_at", "started_at", "finished_at", "attempts")
    for k in keys:
        console.print(f"{k}: {fmt_num(d.get(k))}", highlight=False)
    p = job.progress
    if p:
        console.print(
            "progress: " + ", ".join(f"{k} {fmt_num(v)}" for k, v in p.items()), highlight=False
        )
    _print_summary(job)


@jobs_app.command("wait")
@user_errors
def wait_command(
    job_id: int = ID_ARG,
    timeout: float = typer.Option(None, "--timeout", help="Give up after this many seconds."),
    server: str = SERVER_OPTION,
    api_key: str = API_KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Follow a job until it finishes (progress bar unless --json), then summarise it.
    Exits non-zero when the job failed."""
    with _client(server, api_key) as c:
        job = _follow(c.job(job_id), as_json, timeout)
    _summary(job, as_json)


@jobs_app.command("pareto")
@user_errors
def pareto_command(
    job_id: int = ID_ARG,
    where: list[str] = typer.Option(
        None, "--where", help="Filter like 'tokens_per_s_per_user>=50' (repeatable)."
    ),
    sort: str = typer.Option(None, "--sort", help="Sort by this metric."),
    order: str = typer.Option(None, "--order", help="asc | desc"),
    as_csv: bool = typer.Option(False, "--csv", help="Print the server's CSV."),
    server: str = SERVER_OPTION,
    api_key: str = API_KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The job's Pareto points: main metrics and a one-line deployment each
    (* = recommended)."""
    if order not in (None, "asc", "desc"):
        fail(f"--order {order}: use asc or desc")
    for w in where or []:
        if ">=" not in w and "<=" not in w:
            fail(f"--where {w!r}: write METRIC>=VALUE or METRIC<=VALUE")
    with _client(server, api_key) as c:
        if as_csv:
            typer.echo(_job(c, job_id).pareto_csv(where=where, sort=sort), nl=False)
            return
        job = c.job(job_id)
        points = job.pareto_points(where=where, sort=sort, order=order)
    if as_json:
        print_json(points)
        return
    if not points:
        msg = "no Pareto point matches the filter" if where else "the Pareto front is empty"
        console.print(f"job {job.id} ({job.status}): {msg}", highlight=False)
        return
    metrics = _objectives(job) or [m for m in points[0].get("metrics") or {}][:3]
    metrics += [m for m in EXTRA_METRICS if m not in metrics]
    rows = [
        [
            f"{p['id']}{'*' if p.get('recommended') else ''}",
            deployment_summary(p.get("deployment")),
            *((p.get("metrics") or {}).get(m) for m in metrics),
        ]
        for p in points[:TABLE_ROWS]
    ]
    shown = f", first {TABLE_ROWS}" if len(points) > TABLE_ROWS else ""
    print_table(
        f"job {job.id} Pareto set ({len(points)} points{shown}; * recommended)",
        ["candidate", "deployment", *metrics],
        rows,
    )


@jobs_app.command("export")
@user_errors
def export_command(
    job_id: int = ID_ARG,
    candidate: int = typer.Option(..., "--candidate", "-c", help="Candidate id (a Pareto point)."),
    fmt: str = typer.Option(..., "--format", "-f", help="dynamo | vllm | sglang | trtllm"),
    engine_version: str = typer.Option(
        None, "--engine-version", help="Engine version (default: the newest recorded)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the files into this folder."),
    server: str = SERVER_OPTION,
    api_key: str = API_KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A candidate's deployment as engine config files (printed, or written with --out)."""
    from codesign.client import write_files

    with _client(server, api_key) as c:
        res = _job(c, job_id).export_result(candidate, fmt, engine_version)
    files: dict[str, str] = res.get("files") or {}
    written = [str(p) for p in write_files(files, out)] if out is not None else []
    if as_json:
        print_json(res | {"files": written or files})
        return
    if out is None:
        for rel, text in files.items():
            console.print(f"[bold]# --- {rel}[/]", highlight=False)
            console.print(text, highlight=False, markup=False, soft_wrap=True)
    else:
        for path in written:
            console.print(f"wrote {path}", highlight=False)
    for note in res.get("notes") or []:
        console.print(f"note: {note}", highlight=False, markup=False)


@jobs_app.command("cancel")
@user_errors
def cancel_command(
    job_id: int = ID_ARG,
    server: str = SERVER_OPTION,
    api_key: str = API_KEY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Cancel a job (a running one stops after its current batch)."""
    with _client(server, api_key) as c:
        job = _job(c, job_id).cancel()
    if as_json:
        print_json(job.data)
    else:
        console.print(f"job {job.id}: {job.status}", highlight=False)


@jobs_app.command("delete")
@user_errors
def delete_command(
    job_id: int = ID_ARG, server: str = SERVER_OPTION, api_key: str = API_KEY_OPTION
) -> None:
    """Delete a finished job and its results (cancel a running one first)."""
    with _client(server, api_key) as c:
        _job(c, job_id).delete()
    console.print(f"deleted job {job_id}", highlight=False)
