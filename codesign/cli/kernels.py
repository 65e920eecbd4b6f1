"""`codesign kernels ...`: time kernels on a lent device and read them against the model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from codesign.cli.common import (
    JSON_OPTION,
    console,
    err_console,
    print_json,
    print_table,
    user_errors,
)

kernels_app = typer.Typer(
    help="Kernel measurements (GEMM, attention, memory bandwidth) on this machine's device, "
    "and how the performance model compares.",
    no_args_is_help=True,
)


@kernels_app.command("measure")
@user_errors
def measure_command(
    out: Path = typer.Option(..., "--out", help="Measurement file to write (JSON)."),
    backend: str = typer.Option("torch", help="torch (the GPU when CUDA is there) | numpy."),
    quick: bool = typer.Option(False, "--quick", help="Small shapes: a smoke run (seconds)."),
    repeats: int = typer.Option(20, min=1, help="Timed repeats per kernel (median kept)."),
    warmup: int = typer.Option(3, min=0, help="Untimed runs before the timed ones."),
    notes: str = typer.Option("", help="Free text kept in the provenance."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Time GEMMs (bf16, fp8 where the chip has it), causal and decode attention and
    device copies; write them with their provenance (device, driver, framework, commit)."""
    from codesign.kernels.bench import measure
    from codesign.kernels.report import KernelReport, save_report

    with Progress(
        TextColumn("[bold]measuring[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("", total=None)

        def on_progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label[:60])

        report = KernelReport.model_validate(
            measure(backend, quick, repeats, warmup, on_progress, notes)
        )
    save_report(report, out)
    if as_json:
        print_json({"out": str(out), "rows": len(report.rows), **report.provenance.model_dump()})
        return
    console.print(
        f"{len(report.rows)} kernels on {report.provenance.device}"
        f" ({len(report.skipped)} skipped) -> {out}"
    )


@kernels_app.command("compare")
@user_errors
def compare_command(
    measured: Path = typer.Argument(..., help="Measurement file (codesign kernels measure)."),
    chip: str = typer.Option("", help="Catalog chip (default: matched from the device name)."),
    calibration: Path | None = typer.Option(None, help="Calibration file (default: packaged)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Model time / measured time per kernel kind, and the efficiencies the measurements
    imply next to the calibration's."""
    from codesign.kernels.compare import compare
    from codesign.kernels.report import load_report
    from codesign.perf.calibration import load_calibration

    result = compare(load_report(measured), chip or None, load_calibration(calibration))
    if as_json:
        print_json(result)
        return
    p = result["provenance"]
    console.print(f"{p['device']} ({p['framework']}, {p['measured_at']}) as chip {result['chip']}")
    print_table(
        "model / measured time",
        ["op", "dtype", "rows", "median", "min", "max"],
        [
            (s["op"], s["dtype"], s["rows"], s["ratio_median"], s["ratio_min"], s["ratio_max"])
            for s in result["summary"]
        ],
    )
    print_table(
        "implied by the measurements",
        ["parameter", "values"],
        [
            (k, ", ".join(f"{n}={_fmt(v)}" for n, v in d.items()))
            for k, d in result["implied"].items()
        ],
    )


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
