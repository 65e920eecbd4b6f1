"""The perf benchmark runs and reports sane numbers (speed is reported, not asserted)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from codesign.cli import app


def test_bench_perf_reports_throughput(shared_dir) -> None:
    res = CliRunner().invoke(
        app, ["bench", "perf", "--candidates", "2000", "--repeats", "1", "--json"]
    )
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["candidates"] > 1000
    assert data["candidates_per_s"] > 0
    assert data["finite_fraction_last_model"] == 1.0


def test_bench_evaluate_reports_throughput(shared_dir) -> None:
    res = CliRunner().invoke(
        app, ["bench", "evaluate", "--candidates", "2000", "--repeats", "1", "--json"]
    )
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["candidates"] == 2000 and data["candidates_per_s"] > 0
    assert 0.5 < data["feasible_fraction"] <= 1.0
