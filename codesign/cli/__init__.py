"""The `codesign` command line: typer + rich, `--json` everywhere, one-line user errors."""

from __future__ import annotations

import typer

from codesign import __version__
from codesign.cli import hardware, models, trace, trace_synth  # noqa: F401 (registers)
from codesign.cli.bench import bench_app
from codesign.cli.common import JSON_OPTION, user_errors
from codesign.cli.evaluate import evaluate_command
from codesign.cli.export import export_command
from codesign.cli.jobs import jobs_app
from codesign.cli.kernels import kernels_app
from codesign.cli.optimize import bench_search, optimize_command
from codesign.cli.perf import perf_commands
from codesign.cli.plot import plot_app
from codesign.cli.service import keys_app, serve_command, worker_command
from codesign.cli.simulate import bench_simulate, simulate_command

app = typer.Typer(
    name="codesign",
    help="Hardware-software co-design optimizer for serving LLM agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
catalog_app = typer.Typer(
    help="List the built-in catalog: systems, chips, models, precisions.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(hardware.system_app, name="system")
app.add_typer(hardware.chip_app, name="chip")
app.add_typer(models.model_app, name="model")
perf_commands(app)
app.add_typer(bench_app, name="bench")
app.add_typer(trace.trace_app, name="trace")
app.command("evaluate")(evaluate_command)
app.command("export")(export_command)
app.command("simulate")(simulate_command)
app.command("optimize")(optimize_command)
app.add_typer(plot_app, name="plot")
app.command("serve")(serve_command)
app.command("worker")(worker_command)
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
app.add_typer(kernels_app, name="kernels")
bench_app.command("search")(bench_search)
bench_app.command("simulate")(bench_simulate)


@catalog_app.command("systems")
@user_errors
def catalog_systems(as_json: bool = JSON_OPTION) -> None:
    """Systems: chips per node, scale-up domain, fabric, memory, power and price per chip."""
    hardware.show_systems(as_json)


@catalog_app.command("chips")
@user_errors
def catalog_chips(as_json: bool = JSON_OPTION) -> None:
    """Chips: dense peak FLOP/s per precision, memory, SRAM, TDP and price."""
    hardware.show_chips(as_json)


@catalog_app.command("models")
@user_errors
def catalog_models(as_json: bool = JSON_OPTION) -> None:
    """Models: parameters (total/active), KV bytes per token, context, or why unsupported."""
    models.show_models(as_json)


@catalog_app.command("precisions")
@user_errors
def catalog_precisions(as_json: bool = JSON_OPTION) -> None:
    """Numeric formats: bits per element (block scales included) and chips that run them."""
    hardware.show_precisions(as_json)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"codesign {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Hardware-software co-design optimizer for serving LLM agents."""


def main() -> None:
    app()
