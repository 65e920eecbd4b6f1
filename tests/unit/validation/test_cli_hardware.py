"""`codesign validate --hardware DIR`: a system the catalog does not hold is predicted from
the chip and system specs in DIR (its spec sheet); without them its rows are set apart
with the reason and the others are still predicted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer
from typer.testing import CliRunner

from codesign.cli import perf as perf_cli
from hwmodels.catalog import BUILTIN_DIR


def _spec_folder(tmp_path: Path, bandwidth_gb_s: int) -> Path:
    """An H200 node renamed "h200_fast", its HBM at ``bandwidth_gb_s``."""
    out = tmp_path / "hw"
    (out / "chips").mkdir(parents=True)
    (out / "systems").mkdir()
    chip = (BUILTIN_DIR / "chips" / "h200_sxm.yaml").read_text()
    chip = chip.replace("name: h200_sxm", "name: h200_fast", 1)
    chip = chip.replace("bandwidth_gb_s: 4800", f"bandwidth_gb_s: {bandwidth_gb_s}", 1)
    (out / "chips" / "h200_fast.yaml").write_text(chip)
    system = (BUILTIN_DIR / "systems" / "h200_sxm.yaml").read_text()
    system = system.replace("name: h200_sxm", "name: h200_fast", 1)
    system = system.replace("aliases: [hgx_h200, dgx_h200, h200]", "aliases: []", 1)
    system = system.replace("chip: h200_sxm", "chip: h200_fast", 1)
    (out / "systems" / "h200_fast.yaml").write_text(system)
    return out


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    perf_cli.perf_commands(app)
    return app


def test_unknown_system_from_a_spec_folder(
    shared_dir, tmp_path: Path, write_rows: Callable[..., Path], agg
) -> None:
    rows = write_rows([{**agg, "id": "known"}, {**agg, "id": "new", "system": "h200_fast"}])
    runner = CliRunner()
    res = runner.invoke(_app(), ["validate", "--silicon", str(rows), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["predicted"] == 1 and "unknown system 'h200_fast'" in rep["unpredicted"][0]["reason"]

    out = tmp_path / "pred.csv"
    args = ["validate", "--silicon", str(rows), "--json", "--out", str(out)]
    same = _spec_folder(tmp_path / "same", 4800)
    res = runner.invoke(_app(), [*args, "--hardware", str(same)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["predicted"] == 2
    pred = [line.split(",") for line in out.read_text().splitlines()[1:]]
    tpot = {p[0]: float(p[12]) for p in pred}
    assert tpot["new"] == tpot["known"]  # the same spec sheet predicts the same
    faster = _spec_folder(tmp_path / "fast", 9600)
    res = runner.invoke(_app(), [*args, "--hardware", str(faster)])
    tpot = {p[0]: float(p[12]) for p in (ln.split(",") for ln in out.read_text().splitlines()[1:])}
    assert tpot["new"] < tpot["known"]  # more memory bandwidth, faster decode steps
    # the folder is used for that command only
    res = runner.invoke(_app(), ["validate", "--silicon", str(rows), "--json"])
    assert json.loads(res.stdout)["predicted"] == 1
    res = runner.invoke(_app(), [*args, "--hardware", str(tmp_path / "none")])
    assert res.exit_code == 2 and "--hardware" in res.stderr and "not a directory" in res.stderr
    # a spec the catalog cannot read is one error for the command, and the folder is left
    broken = tmp_path / "broken"
    (broken / "systems").mkdir(parents=True)
    (broken / "systems" / "x.yaml").write_text("name: x\nchip: nope\n")
    res = runner.invoke(_app(), [*args, "--hardware", str(broken)])
    assert res.exit_code == 2 and "x.yaml" in res.stderr and "unknown chip 'nope'" in res.stderr
    assert "Traceback" not in res.stderr
    res = runner.invoke(_app(), ["validate", "--silicon", str(rows), "--json"])
    assert json.loads(res.stdout)["predicted"] == 1
