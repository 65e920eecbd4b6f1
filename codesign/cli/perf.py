"""`codesign validate` and `codesign calibrate`: the performance model against measured rows.

Register on the root app with ``perf_commands(app)``. The performance model is reached only
through :func:`_perf_api`, imported lazily, so these commands load fast and tests can swap
in a stand-in model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
from codesign.cli.extra_dirs import hardware_dirs, model_dirs
from codesign.cli.perf_report import pct as _pct
from codesign.cli.perf_report import print_bands as _print_bands
from codesign.cli.perf_report import print_debiased as _print_debiased
from codesign.cli.perf_report import print_repeatability as _print_repeatability
from codesign.cli.perf_report import print_set_aside as _print_set_aside
from codesign.cli.perf_report import print_summary as _print_summary
from codesign.errors import CodesignError
from codesign.validation.crossval import cross_validate
from codesign.validation.report import (
    DEFAULT_GROUPS,
    accuracy_report,
    add_set_aside,
    write_predictions_csv,
)
from codesign.validation.silicon import STR_FIELDS, SiliconRows, default_silicon_path
from codesign.validation.silicon_csv import parse_silicon_csv


@dataclass(frozen=True)
class PerfApi:
    """The entry points of ``codesign.perf`` these commands use."""

    predict_rows: Callable[[SiliconRows, Any], tuple[Any, Any, Any]]
    fit_calibration: Callable[..., Any]  # (rows, base=None) -> Calibration
    load_calibration: Callable[..., Any]  # (path=None) -> Calibration
    default_calibration_path: Path
    physics_defaults: Callable[[], Any]  # () -> uncalibrated Calibration


def _perf_api() -> PerfApi:
    """Import the performance model on first use (tests monkeypatch this function)."""
    from codesign.perf.calibration import (
        DEFAULT_CALIBRATION_PATH,
        Calibration,
        load_calibration,
    )
    from codesign.perf.fit import fit_calibration
    from codesign.perf.predict import predict_rows

    return PerfApi(
        predict_rows=predict_rows,
        fit_calibration=fit_calibration,
        load_calibration=load_calibration,
        default_calibration_path=Path(DEFAULT_CALIBRATION_PATH),
        physics_defaults=Calibration,
    )


# A fold fitted from the physics defaults needs many more evaluations to converge than one
# refined from a calibration that is already close.
STRICT_FOLD_EVALUATIONS = 400
DEFAULT_FIT_EVALUATIONS = 40  # ``fit_calibration``'s own default


def _parse_groups(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in STR_FIELDS]
    if bad:
        raise CodesignError(f"--by: unknown field {bad[0]!r}; choose from {', '.join(STR_FIELDS)}")
    return names


def _load_rows(
    silicon: Path | None, strict: bool = False
) -> tuple[SiliconRows, list[dict[str, Any]]]:
    """(rows, rows set aside): a row that cannot be read is set aside with its reason,
    or, ``strict``, is the error."""
    path = silicon if silicon is not None else default_silicon_path()
    return parse_silicon_csv(Path(path), lenient=not strict)


HARDWARE_OPTION = typer.Option(
    None,
    "--hardware",
    help="Extra folder with chips/ and systems/ YAML specs (as in hwmodels/catalog): "
    "systems the rows name that the catalog does not hold, from their spec sheets.",
)
STRICT_OPTION = typer.Option(
    False,
    "--strict",
    help="Stop at the first row that cannot be read (default: set it aside, count it as "
    "not predicted, and go on with the others).",
)


def _bar(title: str) -> Progress:
    """A transient progress bar on stderr: ``title``, bar, done/total, elapsed."""
    return Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


@contextlib.contextmanager
def _fit_progress(enabled: bool, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over the fit's model evaluations (None when not on a terminal)."""
    if not enabled:
        yield None
        return
    with _bar("[bold]calibrating[/] evaluations") as progress:
        task = progress.add_task("fit", total=total)

        def on_eval(done: int) -> None:
            progress.update(task, completed=min(done, total))

        yield on_eval


def _fold_progress(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext(None)
    return _bar("[bold]cross-validation[/] {task.description}")


def _run_cv(
    rows: SiliconRows,
    api: PerfApi,
    calibration: Any,
    by: str,
    groups: Sequence[str],
    strict: bool = False,
) -> dict[str, Any]:
    """Leave-one-out folds, each refitted on the other rows: from ``calibration`` (fast;
    it was fitted on every row, the held-out ones included), or ``strict``ly from the
    uncalibrated physics defaults, so nothing of the held-out rows reaches the fold."""
    if strict:
        base = api.physics_defaults()

        def fit(train: SiliconRows) -> Any:
            return api.fit_calibration(train, base=base, max_nfev=STRICT_FOLD_EVALUATIONS)
    else:

        def fit(train: SiliconRows) -> Any:
            return api.fit_calibration(train, base=calibration)

    with _fold_progress(err_console.is_terminal) as progress:
        folds = len(np.unique(rows.group_keys(by).astype(str)))
        task = progress.add_task(f"by {by}", total=folds) if progress else None

        def on_fold(value: str, done: int, total: int) -> None:
            if progress is not None and task is not None:
                progress.update(task, completed=done, total=total, description=f"by {by}")

        return cross_validate(
            rows,
            fit_fn=fit,
            predict_fn=api.predict_rows,
            by=by,
            groups=groups,
            on_fold=on_fold,
        )


@user_errors
def validate(
    silicon: Path | None = typer.Option(
        None, "--silicon", help="Measured rows (default: ../shared/validation/silicon_dev.csv)."
    ),
    configs: Path | None = typer.Option(
        None, "--configs", help="Extra folder of ORG--NAME_config.json files, searched first."
    ),
    hardware: Path | None = HARDWARE_OPTION,
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Calibration file (default: the packaged one)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write per-row predictions to this CSV."),
    by: str = typer.Option(
        ",".join(DEFAULT_GROUPS), "--by", help="Comma-separated fields to group the summary by."
    ),
    cv: str | None = typer.Option(
        None, "--cv", help="Also cross-validate: leave one model (or system) out at a time."
    ),
    cv_strict: bool = typer.Option(
        False,
        "--cv-strict",
        help="Fit each fold from the uncalibrated physics defaults instead of the packaged "
        "calibration (which has seen the held-out rows); minutes instead of seconds.",
    ),
    strict: bool = STRICT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Predict TTFT/TPOT for measured rows and report the errors (APE, within 2x)."""
    groups = _parse_groups(by)
    if cv is not None and cv not in STR_FIELDS:
        raise CodesignError(f"--cv: unknown field {cv!r}; use model or system")
    if cv_strict and cv is None:
        raise CodesignError("--cv-strict applies to cross-validation: add --cv model or system")
    rows, set_aside = _load_rows(silicon, strict)
    with model_dirs(configs), hardware_dirs(hardware):
        api = _perf_api()
        calib = api.load_calibration(path=calibration)
        ttft, tpot, reasons = api.predict_rows(rows, calib)
        report = add_set_aside(accuracy_report(rows, ttft, tpot, reasons, by=groups), set_aside)
        if out is not None:
            write_predictions_csv(out, rows, ttft, tpot, reasons, set_aside)
        if cv is not None:
            report["cross_validation"] = _run_cv(rows, api, calib, cv, groups, cv_strict)
            report["cross_validation"]["strict"] = cv_strict
    if as_json:
        print_json(report)
        return
    _print_summary(f"Accuracy on {report['n']} rows", report)
    _print_set_aside(set_aside)
    _print_repeatability(report["repeatability"])
    _print_debiased(report["debiased"], report)
    if cv is not None:
        _print_summary(f"Leave-one-{cv}-out cross-validation", report["cross_validation"], folds=cv)
    if out is not None:
        console.print(f"predictions written to {out}")


def _compare_rows(before: dict[str, Any], after: dict[str, Any]) -> list[list[str]]:
    scopes: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [("all", "", before, after)]
    for field, groups in after["by"].items():
        for value, stats in groups.items():
            scopes.append((field, value, before["by"][field].get(value, {}), stats))
    out = []
    for group, value, b, a in scopes:
        cells = [group, value, str(a["n"])]
        for key in ("coverage", "ttft_median_ape", "tpot_median_ape", "within_2x_both"):
            cells.append(f"{_pct(b.get(key))} → {_pct(a.get(key))}")
        out.append(cells)
    return out


@user_errors
def calibrate(
    silicon: Path | None = typer.Option(
        None, "--silicon", help="Measured rows (default: ../shared/validation/silicon_dev.csv)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Calibration file to write (default: the packaged one)."
    ),
    configs: Path | None = typer.Option(
        None, "--configs", help="Extra folder of ORG--NAME_config.json files, searched first."
    ),
    hardware: Path | None = HARDWARE_OPTION,
    by: str = typer.Option(
        ",".join(DEFAULT_GROUPS), "--by", help="Comma-separated fields to group the summary by."
    ),
    evaluations: int = typer.Option(
        DEFAULT_FIT_EVALUATIONS,
        "--evaluations",
        min=1,
        help="Most model evaluations the fit may spend (about 80 a second on 3,000 rows); "
        "the default refines the current calibration, a few hundred move a new parameter "
        "from its prior.",
    ),
    bands: str = typer.Option(
        "cv-system",
        "--bands",
        help="Error bands stored with the calibration (each estimate's 10th-90th percentile "
        "range): cv-system (each system's rows predicted by a refit without them; one "
        "refit per system), in-sample, or none.",
    ),
    kernels: list[Path] = typer.Option(
        [],
        "--kernels",
        help="Kernel measurement file (codesign kernels measure; repeatable): pin the "
        "memory, GEMM and prefill-attention efficiencies it implies and fit the rest.",
    ),
    strict: bool = STRICT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit the efficiency curves to measured rows, write the calibration, show before/after."""
    from codesign.validation.bands import BAND_METHODS, bands_from_rows

    if bands not in BAND_METHODS:
        raise CodesignError(f"--bands: choose one of {', '.join(BAND_METHODS)}, got {bands!r}")
    groups = _parse_groups(by)
    rows, set_aside = _load_rows(silicon, strict)
    with model_dirs(configs), hardware_dirs(hardware):
        api = _perf_api()
        path = out if out is not None else api.default_calibration_path
        before_calib = api.load_calibration(path=out if out is not None and out.is_file() else None)
        before = accuracy_report(rows, *api.predict_rows(rows, before_calib), by=groups)
        base = None
        if kernels:
            from codesign.kernels.pins import apply_pins, pins_from_files

            start = api.load_calibration()
            base = apply_pins(start, *pins_from_files(kernels, start))
        with _fit_progress(err_console.is_terminal and not as_json, evaluations) as on_eval:
            fitted = api.fit_calibration(rows, base=base, max_nfev=evaluations, progress=on_eval)
        with _fold_progress(err_console.is_terminal and not as_json) as progress:
            task = progress.add_task("error bands", total=None) if progress else None

            def on_fold(value: str, done: int, total: int) -> None:
                if progress is not None and task is not None:
                    progress.update(task, completed=done, total=total)

            error_bands = bands_from_rows(
                rows,
                fitted,
                # each fold refines the new calibration, as ``validate --cv`` does
                lambda train: api.fit_calibration(
                    train, base=fitted, max_nfev=min(evaluations, DEFAULT_FIT_EVALUATIONS)
                ),
                api.predict_rows,
                bands,  # type: ignore[arg-type]
                on_fold,
            )
        if error_bands is not None:
            fitted = fitted.with_error_bands(error_bands)
        path.parent.mkdir(parents=True, exist_ok=True)
        fitted.save(path)
        after = accuracy_report(rows, *api.predict_rows(rows, fitted), by=groups)
    for rep in (before, after):
        rep.pop("unpredicted")
    if as_json:
        print_json(
            {
                "calibration_path": str(path),
                "n": len(rows),
                "set_aside": set_aside,
                "before": before,
                "after": after,
                "error_bands": error_bands.model_dump() if error_bands is not None else None,
            }
        )
        return
    print_table(
        f"Calibration on {len(rows)} rows: before → after",
        ["group", "value", "n", "coverage", "TTFT med APE", "TPOT med APE", "both within 2x"],
        _compare_rows(before, after),
    )
    if error_bands is not None:
        _print_bands(error_bands)
    _print_set_aside(set_aside)
    console.print(f"calibration written to {path}")


def perf_commands(app: typer.Typer) -> None:
    """Register `validate`, `calibrate` and `estimate` on the root `codesign` app."""
    app.command("validate")(validate)
    app.command("calibrate")(calibrate)
    from codesign.cli.perf_estimate import estimate_command

    app.command("estimate")(user_errors(estimate_command))
