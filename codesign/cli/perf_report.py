"""Rich tables of an accuracy report (``codesign validate``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from codesign.cli.common import console


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


_SUMMARY_COLUMNS = [
    "group",
    "value",
    "n",
    "predicted",
    "TTFT med APE",
    "TTFT p90 APE",
    "TPOT med APE",
    "TPOT p90 APE",
    "TTFT pred/meas",
    "TPOT pred/meas",
    "both within 2x",
]


def _summary_cells(group: str, value: str, s: dict[str, Any]) -> list[str]:
    return [
        group,
        value,
        str(s["n"]),
        f"{s['predicted']} ({pct(s['coverage'])})",
        pct(s["ttft_median_ape"]),
        pct(s["ttft_p90_ape"]),
        pct(s["tpot_median_ape"]),
        pct(s["tpot_p90_ape"]),
        _ratio(s["ttft_median_ratio"]),
        _ratio(s["tpot_median_ratio"]),
        pct(s["within_2x_both"]),
    ]


def print_summary(title: str, report: dict[str, Any], folds: str | None = None) -> None:
    table = Table(title=title, header_style="bold cyan", title_justify="left")
    for col in _SUMMARY_COLUMNS:
        table.add_column(col, overflow="fold")
    table.add_row(*_summary_cells("all", "", report), style="bold")
    if folds:
        table.add_section()
        for value, stats in report["folds"].items():
            table.add_row(*_summary_cells(f"held-out {folds}", value, stats))
    for field, groups in report["by"].items():
        if field == folds:
            continue  # the same rows as the held-out folds above
        table.add_section()
        for value, stats in groups.items():
            table.add_row(*_summary_cells(field, value, stats))
    console.print(table)
    reasons = report["unpredicted_by_reason"]
    if reasons:
        rt = Table(title="Rows not predicted", header_style="bold cyan", title_justify="left")
        rt.add_column("reason", overflow="fold")
        rt.add_column("rows")
        for reason, count in reasons.items():
            rt.add_row(reason, str(count))
        console.print(rt)


def print_bands(bands: Any) -> None:
    """The calibration's error bands: measured / predicted at the 10th, 50th and 90th
    percentile per serving mode and engine (``codesign.perf.error_bands.ErrorBands``)."""
    table = Table(
        title=f"Error bands (measured / predicted, {bands.source})",
        header_style="bold cyan",
        title_justify="left",
    )
    for col in (
        "group",
        "rows",
        "TTFT p10",
        "TTFT p50",
        "TTFT p90",
        "TPOT p10",
        "TPOT p50",
        "TPOT p90",
    ):
        table.add_column(col)
    for key, b in bands.bands.items():
        table.add_row(key, str(b.rows), *(_ratio(x) for x in (*b.ttft_ratio, *b.tpot_ratio)))
    console.print(table)


def print_repeatability(rep: dict[str, Any] | None) -> None:
    """One paragraph: configurations measured more than once, how far their runs
    disagree and what that costs a prediction (``validation.repeatability``)."""
    if not rep or not rep["configurations_repeated"]:
        return
    line = (
        f"Repeats: {rep['configurations_repeated']} configurations measured more than once "
        f"({rep['rows_repeated']} rows); {rep['configurations_disagreeing']} disagree by more "
        f"than {pct(rep['tolerance'])} ({rep['rows_disagreeing']} rows)"
    )
    if rep["configurations_disagreeing"]:
        line += (
            f", max/min TTFT {_ratio(rep['ttft_spread_median'])}x median "
            f"({_ratio(rep['ttft_spread_p90'])}x p90), TPOT "
            f"{_ratio(rep['tpot_spread_median'])}x ({_ratio(rep['tpot_spread_p90'])}x). On "
            "those rows, predicting each run by its configuration's geometric mean (what "
            "the recorded columns can tell) scores TTFT "
            f"{pct(rep['repeat_ttft_median_ape'])} / TPOT {pct(rep['repeat_tpot_median_ape'])} "
            f"median APE; this model: TTFT {pct(rep['model_ttft_median_ape'])} / TPOT "
            f"{pct(rep['model_tpot_median_ape'])}."
        )
    console.print(line)


def print_debiased(deb: dict[str, Any] | None, report: dict[str, Any]) -> None:
    """One line: the error left once each group's median bias is taken out
    (``validation.repeatability.debiased_errors``), beside the model's own."""
    if not deb or deb["ttft_median_ape"] is None:
        return
    console.print(
        f"Bias per group: rescaling each {' x '.join(deb['fields'])} group "
        f"({deb['groups']}) by its median measured/predicted leaves TTFT "
        f"{pct(deb['ttft_median_ape'])} / TPOT {pct(deb['tpot_median_ape'])} median APE "
        f"(this model: {pct(report['ttft_median_ape'])} / {pct(report['tpot_median_ape'])}); "
        "the rest is scatter within the groups."
    )


def print_set_aside(set_aside: list[dict[str, Any]], shown: int = 10) -> None:
    """The file's rows that could not be read, with line and reason (the first ``shown``)."""
    if not set_aside:
        return
    table = Table(
        title=f"Rows set aside ({len(set_aside)}; counted as not predicted)",
        header_style="bold cyan",
        title_justify="left",
    )
    table.add_column("line")
    table.add_column("id", overflow="fold")
    table.add_column("reason", overflow="fold")
    for r in set_aside[:shown]:
        table.add_row(str(r["line"]), r["id"], r["reason"])
    if len(set_aside) > shown:
        table.add_row("…", "", f"{len(set_aside) - shown} more (--json lists them all)")
    console.print(table)
