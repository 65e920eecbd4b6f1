import json

import typer
import yaml
from search_helpers import TINY
from typer.testing import CliRunner

from codesign.cli.optimize import optimize_command


def test_optimize_writes_all_files(tmp_path):
    spec = {**TINY, "strategy": {"sampler": "auto", "budget": 400, "batch": 64}}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    app = typer.Typer()
    app.command()(optimize_command)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, [str(path), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["pareto"] and data["recommended"] is not None
    # every front point carries the calibration's band for its mode and engine
    for point in data["pareto"]:
        band = point["error_band"]
        dep = point["deployment"]  # defaults left out: agg, trtllm
        mode, engine = dep.get("mode", "agg"), dep.get("engine", "trtllm")
        assert band["band"] in (f"{mode}/{engine}", mode, "all")
        lo, _, hi = band["ttft_ratio"]
        ttft = point["metrics"]["ttft_p50_s"]
        assert band["ranges"]["ttft_p50_s"] == [ttft * lo, ttft * hi]
    for name in (
        "pareto.csv",
        "pareto.json",
        "pareto.png",
        "recommended.yaml",
        "evaluations.csv",
        "progress.jsonl",
    ):
        assert (out / name).is_file(), name
    r = CliRunner().invoke(app, [str(path), "--executor", "dask"])
    assert r.exit_code != 0
