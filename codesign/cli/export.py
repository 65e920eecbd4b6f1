"""`codesign export`: a deployment as configs people can apply (Dynamo, vLLM, SGLang, TRT-LLM)."""

from __future__ import annotations

from pathlib import Path

import typer

from codesign.cli.common import JSON_OPTION, console, print_json, user_errors


@user_errors
def export_command(
    deployment: Path = typer.Argument(..., help="Deployment YAML file."),
    fmt: str = typer.Option(..., "--format", "-f", help="dynamo | vllm | sglang | trtllm"),
    engine_version: str = typer.Option(
        None,
        "--engine-version",
        help="Engine version whose argument names to use (Dynamo version for --format "
        "dynamo); default: the newest recorded.",
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the files into this folder."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the deployment as an engine config. Every flag and field written exists in the
    stated engine version (checked against recorded argument definitions); what an engine
    cannot express (non-GPU pools, attention/FFN split) is refused with the reason."""
    from codesign.deployment import Deployment
    from codesign.export import export

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
