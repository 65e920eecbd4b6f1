"""`codesign simulate` and `codesign bench simulate` through typer (registered here the way
the main app registers them)."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from codesign.cli.simulate import bench_simulate, simulate_command

app = typer.Typer()
app.command("simulate")(simulate_command)
app.command("bench-simulate")(bench_simulate)
runner = CliRunner()


def test_simulate_json_on_a_synthetic_preset_with_comparison(tmp_path):
    out = tmp_path / "reqs.csv"
    res = runner.invoke(
        app,
        [
            "simulate",
            "-d",
            "examples/deployment-r1-gb200-agg.yaml",
            "--synth",
            "tool-agent",
            "--synth-sessions",
            "20",
            "-n",
            "8",
            "--compare-analytic",
            "--requests-out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["requests"] > 0 and data["metrics"]["output_tokens_per_s"] > 0
    rows = {r["metric"]: r for r in data["compare"]["rows"]}
    assert rows["chips"]["rel_diff"] == 0
    assert "sim_decode_batch_seen_by_a_token" in data["compare"]["explain"]
    assert out.read_text().startswith("trace_idx,")


def test_bad_input_is_one_line():
    res = runner.invoke(app, ["simulate", "-d", "examples/deployment-r1-gb200-agg.yaml"])
    assert res.exit_code == 2
    assert "exactly one of --trace" in res.output
    res = runner.invoke(app, ["simulate", "-d", "nope.yaml", "--synth", "chat"])
    assert res.exit_code == 2 and "not found" in res.output


def test_bench_reports_requests_per_second():
    res = runner.invoke(app, ["bench-simulate", "--requests", "3000", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["simulated_requests"] >= 1000 and data["requests_per_s"] > 0
