"""`codesign export`: a deployment as configs people can apply (Dynamo, vLLM, SGLang, TRT-LLM)."""

from __future__ import annotations

from pathlib import Path

import typer

from codesign.cli.common import JSON_OPTION, console, fail, print_json, user_errors


@user_errors
def export_command(
    deployment: Path = typer.Argument(
        None, help="Deployment YAML file (or --job/--candidate for a stored job's candidate)."
    ),
    fmt: str = typer.Option(..., "--format", "-f", help="dynamo | vllm | sglang | trtllm"),
    engine_version: str = typer.Option(
        None,
        "--engine-version",
        help="Engine version whose argument names to use (Dynamo version for --format "
        "dynamo); default: the newest recorded.",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the files into this folder."),
    job: int = typer.Option(None, "--job", help="A job on the server (with --candidate)."),
    candidate: int = typer.Option(None, "--candidate", help="The job's candidate id."),
    server: str = typer.Option(
        "http://127.0.0.1:8000", "--server", envvar="CODESIGN_SERVER", help="Service URL."
    ),
    api_key: str = typer.Option(None, "--api-key", envvar="CODESIGN_API_KEY"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the deployment as an engine config. Every flag and field written exists in the
    stated engine version (checked against recorded argument definitions); what an engine
    cannot express (non-GPU pools, attention/FFN split) is refused with the reason."""
    from codesign.deployment import Deployment
    from codesign.export import export

    if (job is None) != (candidate is None) or (job is None) == (deployment is None):
        fail("give a deployment file, or --job ID --candidate CID (a stored job's candidate)")
    if job is not None:
        from codesign.client import Client

        with Client(server, api_key=api_key) as client:
            dep = Deployment.model_validate(client.job(job).candidate(candidate)["deployment"])
    else:
        dep = Deployment.from_file(deployment)
    res = export(dep, fmt, engine_version)
    written: list[str] = []
    if out is not None:
        for rel, text in res.files.items():
            path = out / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(str(path))
    if as_json:
        print_json(
            {
                "format": res.format,
                "engine": res.engine,
                "engine_version": res.engine_version,
                "files": written or res.files,
                "notes": res.notes,
            }
        )
        return
    if out is None:
        for rel, text in res.files.items():
            console.print(f"[bold]# --- {rel}[/]", highlight=False)
            console.print(text, highlight=False, markup=False, soft_wrap=True)
    else:
        for path in written:
            console.print(f"wrote {path}", highlight=False)
    for note in res.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
