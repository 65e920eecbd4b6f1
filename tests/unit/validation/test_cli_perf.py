"""`codesign validate` / `codesign calibrate` with a stand-in performance model."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from codesign.cli import perf as perf_cli
from codesign.validation.silicon import SiliconRows

runner = CliRunner()


@dataclass
class FakeCalibration:
    ms_per_token: float  # TTFT = ms_per_token * isl; TPOT = 10 ms

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"ms_per_token": self.ms_per_token}))


class FakePerf:
    """Records calls; m/X has no config, everything else is predicted."""

    def __init__(self, default_path: Path) -> None:
        self.default_path = default_path
        self.calls: list[tuple] = []
        self.model_dirs_seen: list[str] = []

    def predict_rows(self, rows: SiliconRows, calib: FakeCalibration):
        self.calls.append(("predict", len(rows), calib.ms_per_token))
        self.model_dirs_seen.append(os.environ.get("CODESIGN_MODEL_DIRS", ""))
        why = np.where(rows.model == "m/X", "no config for m/X", "").astype(object)
        return calib.ms_per_token * rows.isl, np.full(len(rows), 10.0), why

    def fit_calibration(
        self,
        rows: SiliconRows,
        base: FakeCalibration | None = None,
        max_nfev: int = 40,
        progress=None,
    ):
        self.calls.append(("fit", len(rows), base.ms_per_token if base else None, max_nfev))
        if progress is not None:
            progress(max_nfev)
        return FakeCalibration(float(np.mean(rows.ttft_ms / rows.isl)))

    def load_calibration(self, path: Path | None = None) -> FakeCalibration:
        self.calls.append(("load", str(path) if path else None))
        if path is None:
            return FakeCalibration(1.0)
        return FakeCalibration(json.loads(Path(path).read_text())["ms_per_token"])

    def api(self) -> perf_cli.PerfApi:
        return perf_cli.PerfApi(
            predict_rows=self.predict_rows,
            fit_calibration=self.fit_calibration,
            load_calibration=self.load_calibration,
            default_calibration_path=self.default_path,
            physics_defaults=lambda: FakeCalibration(7.0),
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakePerf:
    fp = FakePerf(tmp_path / "packaged" / "calibration.json")
    monkeypatch.setattr(perf_cli, "_perf_api", fp.api)
    return fp


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """test root"""

    perf_cli.perf_commands(root)
    return root


@pytest.fixture
def small_csv(write_rows: Callable[..., Path], agg) -> Path:
    # isl 100 everywhere; measured TTFT 100, 200, 400 ms (1, 2, 4 ms/token), TPOT 10 ms;
    # the third row is model m/X, which the stand-in cannot predict.
    recs = [
        {**agg, "id": "a", "isl": "100", "silicon_ttft_ms": "100", "model_path": "m/A"},
        {**agg, "id": "b", "isl": "100", "silicon_ttft_ms": "200", "model_path": "m/B"},
        {**agg, "id": "x", "isl": "100", "silicon_ttft_ms": "400", "model_path": "m/X"},
    ]
    for r in recs:
        r["silicon_tpot_ms"] = "10"
    return write_rows(recs)


def test_validate_json(app, fake: FakePerf, small_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    res = runner.invoke(
        app, ["validate", "--silicon", str(small_csv), "--json", "--out", str(out), "--by", "model"]
    )
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    # Default calibration 1 ms/token -> TTFT 100 ms for a (APE 0) and b (APE 0.5).
    assert (rep["n"], rep["predicted"]) == (3, 2)
    assert rep["coverage"] == pytest.approx(2 / 3)
    assert rep["ttft_median_ape"] == pytest.approx(0.25)
    assert rep["tpot_median_ape"] == 0.0
    assert list(rep["by"]) == ["model"] and rep["by"]["model"]["m/B"]["ttft_median_ape"] == 0.5
    assert rep["unpredicted"] == [{"id": "x", "reason": "no config for m/X"}]
    assert fake.calls[0] == ("load", None)
    with out.open() as fh:
        assert [r["predicted_ttft_ms"] for r in csv.DictReader(fh)] == ["100.0", "100.0", ""]


def test_validate_with_calibration_file_and_cv(
    app, fake: FakePerf, small_csv: Path, tmp_path: Path
) -> None:
    cal = tmp_path / "cal.json"
    FakeCalibration(2.0).save(cal)
    res = runner.invoke(
        app,
        [
            "validate",
            "--silicon",
            str(small_csv),
            "--calibration",
            str(cal),
            "--cv",
            "model",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["ttft_median_ape"] == pytest.approx(0.5)  # 200 vs 100 and 200 vs 200
    cv = rep["cross_validation"]
    # Fold m/A: fit on b, x -> (2 + 4) / 2 = 3 ms/token -> 300 vs 100, APE 2.0.
    # Fold m/B: fit on a, x -> (1 + 4) / 2 = 2.5 -> 250 vs 200, APE 0.25. m/X: unpredicted.
    assert cv["cv_by"] == "model" and cv["predicted"] == 2
    assert cv["folds"]["m/A"]["ttft_median_ape"] == pytest.approx(2.0)
    assert cv["folds"]["m/B"]["ttft_median_ape"] == pytest.approx(0.25)
    assert cv["ttft_median_ape"] == pytest.approx(1.125)
    fits = [c for c in fake.calls if c[0] == "fit"]
    assert fits == [("fit", 2, 2.0, 40)] * 3  # fitted with the given calibration as base
    assert cv["strict"] is False


def test_validate_strict_cv_fits_folds_from_the_physics_defaults(
    app, fake: FakePerf, small_csv: Path
) -> None:
    res = runner.invoke(
        app, ["validate", "--silicon", str(small_csv), "--cv", "model", "--cv-strict", "--json"]
    )
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    fits = [c for c in fake.calls if c[0] == "fit"]
    # every fold starts from the defaults (7.0), not the packaged calibration (1.0)
    assert fits == [("fit", 2, 7.0, perf_cli.STRICT_FOLD_EVALUATIONS)] * 3
    assert rep["cross_validation"]["strict"] is True
    assert rep["cross_validation"]["folds"]["m/A"]["ttft_median_ape"] == pytest.approx(2.0)


def test_validate_strict_without_cv_is_a_one_line_error(app, fake: FakePerf, small_csv: Path):
    res = runner.invoke(app, ["validate", "--silicon", str(small_csv), "--cv-strict"])
    assert res.exit_code != 0
    assert "--cv-strict applies to cross-validation" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_validate_table(app, fake: FakePerf, small_csv: Path) -> None:
    res = runner.invoke(app, ["validate", "--silicon", str(small_csv), "--cv", "system"])
    # one system in the file -> cross-validation cannot run: one-line error
    assert res.exit_code == 2 and "at least 2 distinct values" in res.stderr
    res = runner.invoke(app, ["validate", "--silicon", str(small_csv)])
    assert res.exit_code == 0, res.stderr
    assert "Accuracy on 3 rows" in res.stdout and "TTFT med APE" in res.stdout
    assert "25.0%" in res.stdout  # overall TTFT median APE
    assert "no config for m/X" in res.stdout


def test_validate_configs_dir_is_searched_first(
    app, fake: FakePerf, small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codesign.models.registry import model_index

    monkeypatch.setenv("CODESIGN_MODEL_DIRS", "/elsewhere")
    cfg = tmp_path / "configs"
    cfg.mkdir()
    (cfg / "acme--tiny-1b_config.json").write_text("{}")
    model_index()  # warm the cache without the new folder
    found: list[bool] = []
    real_predict = fake.predict_rows

    def predict(rows, calib):
        found.append("acme/tiny-1b" in model_index())
        return real_predict(rows, calib)

    fake.predict_rows = predict  # type: ignore[method-assign]
    res = runner.invoke(app, ["validate", "--silicon", str(small_csv), "--configs", str(cfg)])
    assert res.exit_code == 0, res.stderr
    assert found == [True]
    assert fake.model_dirs_seen == [os.pathsep.join([str(cfg.resolve()), "/elsewhere"])]
    assert os.environ["CODESIGN_MODEL_DIRS"] == "/elsewhere"  # restored after the run
    assert "acme/tiny-1b" not in model_index()
    res = runner.invoke(app, ["validate", "--silicon", str(small_csv), "--configs", "/no/such"])
    assert res.exit_code == 2 and "is not a directory" in res.stderr


def test_validate_bad_input_is_one_line(
    app, fake: FakePerf, write_rows: Callable[..., Path], agg
) -> None:
    bad = write_rows([agg, {**agg, "id": "z", "isl": "lots"}])
    res = runner.invoke(app, ["validate", "--silicon", str(bad), "--strict"])
    assert res.exit_code == 2
    assert "rows.csv:3: column 'isl': not a number: 'lots'" in res.stderr
    assert "Traceback" not in res.stderr
    res = runner.invoke(app, ["validate", "--silicon", str(bad), "--by", "model,colour"])
    assert res.exit_code == 2 and "--by: unknown field 'colour'" in res.stderr
    res = runner.invoke(app, ["validate", "--silicon", "/no/such.csv"])
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_validate_sets_a_bad_row_aside_and_counts_it(
    app, fake: FakePerf, write_rows: Callable[..., Path], agg, tmp_path: Path
) -> None:
    # without --strict the unreadable row is reported, counted, and the other predicted
    bad = write_rows(
        [{**agg, "isl": "100", "silicon_ttft_ms": "100"}, {**agg, "id": "z", "isl": "lots"}]
    )
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["validate", "--silicon", str(bad), "--json", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    assert (rep["n"], rep["predicted"], rep["coverage"]) == (2, 1, 0.5)
    assert rep["set_aside"] == [
        {"line": 3, "id": "z", "reason": f"{bad}:3: column 'isl': not a number: 'lots'"}
    ]
    assert rep["unpredicted"][-1]["id"] == "z"
    assert rep["unpredicted_by_reason"] == {"row not read (see set_aside)": 1}
    with out.open() as fh:
        lines = list(csv.DictReader(fh))
    assert [r["id"] for r in lines] == ["a1", "z"] and "not a number" in lines[1]["reason"]
    res = runner.invoke(app, ["validate", "--silicon", str(bad)])
    assert res.exit_code == 0 and "Rows set aside (1; counted as not predicted)" in res.stdout


def test_calibrate_writes_file_and_reports_before_after(
    app, fake: FakePerf, small_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "new" / "cal.json"
    res = runner.invoke(
        app, ["calibrate", "--silicon", str(small_csv), "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    # Fit on all three rows: (1 + 2 + 4) / 3 = 7/3 ms/token.
    assert json.loads(out.read_text()) == {"ms_per_token": pytest.approx(7 / 3)}
    assert rep["calibration_path"] == str(out) and rep["n"] == 3
    assert rep["before"]["ttft_median_ape"] == pytest.approx(0.25)  # 1 ms/token
    # After: 233.3 vs 100 (APE 4/3) and vs 200 (APE 1/6) -> median 0.75.
    assert rep["after"]["ttft_median_ape"] == pytest.approx(0.75)
    assert "unpredicted" not in rep["after"] and rep["after"]["unpredicted_by_reason"]
    assert fake.calls[0] == ("load", None)
    # A second run starts from the file it wrote.
    res = runner.invoke(app, ["calibrate", "--silicon", str(small_csv), "--out", str(out)])
    assert res.exit_code == 0, res.stderr
    assert ("load", str(out)) in fake.calls
    assert "before → after" in res.stdout and "calibration written to" in res.stdout


def test_calibrate_evaluations_reach_the_fit(app, fake: FakePerf, small_csv: Path) -> None:
    res = runner.invoke(app, ["calibrate", "--silicon", str(small_csv), "--json"])
    assert res.exit_code == 0, res.stderr
    assert ("fit", 3, None, perf_cli.DEFAULT_FIT_EVALUATIONS) in fake.calls
    args = ["calibrate", "--silicon", str(small_csv), "--evaluations", "500", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert ("fit", 3, None, 500) in fake.calls
    res = runner.invoke(app, ["calibrate", "--silicon", str(small_csv), "--evaluations", "0"])
    assert res.exit_code == 2 and "--evaluations" in res.stderr


def test_calibrate_default_path(app, fake: FakePerf, small_csv: Path) -> None:
    res = runner.invoke(app, ["calibrate", "--silicon", str(small_csv), "--json"])
    assert res.exit_code == 0, res.stderr
    assert fake.default_path.is_file()
    assert json.loads(res.stdout)["calibration_path"] == str(fake.default_path)


def test_validate_real_file_with_stand_in(app, fake: FakePerf, shared_dir: Path) -> None:
    path = shared_dir / "validation" / "silicon_dev.csv"
    res = runner.invoke(app, ["validate", "--silicon", str(path), "--json", "--cv", "system"])
    assert res.exit_code == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["n"] == 3188 and rep["coverage"] == 1.0
    assert set(rep["by"]["mode"]) == {"agg", "disagg"}
    assert set(rep["cross_validation"]["folds"]) == {
        "b200_sxm",
        "b300_sxm",
        "gb200",
        "h100_sxm",
        "h200_sxm",
    }
    assert sum(f["n"] for f in rep["cross_validation"]["folds"].values()) == 3188


def _with_bands(self: FakeCalibration, bands) -> FakeCalibration:
    self.bands = bands  # type: ignore[attr-defined]
    return self


@pytest.fixture
def two_system_csv(write_rows: Callable[..., Path], agg) -> Path:
    """24 agg rows, 12 per system, isl 100; measured TTFT 100 .. 1,200 ms on h100 and
    twice that on h200 (1 .. 12 and 2 .. 24 ms/token); TPOT 10 ms."""
    recs = []
    for system, scale in (("h100_sxm", 1), ("h200_sxm", 2)):
        for k in range(1, 13):
            recs.append(
                {
                    **agg,
                    "id": f"{system}-{k}",
                    "system": system,
                    "isl": "100",
                    "silicon_ttft_ms": str(100 * k * scale),
                    "silicon_tpot_ms": "10",
                    "model_path": "m/A",
                }
            )
    return write_rows(recs)


def test_calibrate_stores_error_bands_from_held_out_systems(
    app, fake: FakePerf, two_system_csv: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(FakeCalibration, "with_error_bands", _with_bands, raising=False)
    out = tmp_path / "cal.json"
    args = ["calibrate", "--silicon", str(two_system_csv), "--out", str(out), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    bands = json.loads(res.stdout)["error_bands"]
    assert bands["source"] == "leave-one-system-out over 2 systems"
    # each system's rows predicted by the other's fit: h100 rows at 13 ms/token (the mean
    # of 2 .. 24), h200 rows at 6.5 (the mean of 1 .. 12)
    measured = np.array([100 * k * s for s in (1, 2) for k in range(1, 13)], dtype=float)
    predicted = np.array([1300.0] * 12 + [650.0] * 12)
    want = np.quantile(measured / predicted, [0.1, 0.5, 0.9])
    assert bands["bands"]["all"]["ttft_ratio"] == pytest.approx(want)
    assert bands["bands"]["all"]["rows"] == 24 and bands["bands"]["agg"]["rows"] == 24
    assert bands["bands"]["all"]["tpot_ratio"] == pytest.approx([1.0, 1.0, 1.0])
    # one refit on all rows, then one per held-out system, each from the new calibration
    fits = [c for c in fake.calls if c[0] == "fit"]
    assert [f[1] for f in fits] == [24, 12, 12] and fits[1][2] == pytest.approx(9.75)


def test_calibrate_bands_in_sample_none_and_bad(
    app, fake: FakePerf, two_system_csv: Path, monkeypatch
) -> None:
    monkeypatch.setattr(FakeCalibration, "with_error_bands", _with_bands, raising=False)
    base = ["calibrate", "--silicon", str(two_system_csv), "--json", "--bands"]
    res = runner.invoke(app, [*base, "in-sample"])
    assert res.exit_code == 0, res.stderr
    bands = json.loads(res.stdout)["error_bands"]
    assert bands["source"] == "in sample"
    # the fit over all rows: 9.75 ms/token, 975 ms for every row
    measured = np.array([100 * k * s for s in (1, 2) for k in range(1, 13)], dtype=float)
    want = np.quantile(measured / 975.0, [0.1, 0.5, 0.9])
    assert bands["bands"]["agg"]["ttft_ratio"] == pytest.approx(want)
    human = ["calibrate", "--silicon", str(two_system_csv), "--bands", "in-sample"]
    res = runner.invoke(app, human)
    assert res.exit_code == 0, res.stderr
    assert "Error bands (measured / predicted, in sample)" in res.stdout
    res = runner.invoke(app, [*base, "none"])
    assert res.exit_code == 0 and json.loads(res.stdout)["error_bands"] is None
    res = runner.invoke(app, [*base, "sometimes"])
    assert res.exit_code == 2 and "--bands: choose one of cv-system" in res.stderr


def test_calibrate_too_few_rows_for_bands(app, fake: FakePerf, small_csv: Path) -> None:
    """Three rows of one system: no system to hold out and too few rows to read
    percentiles from, so the calibration is written without bands."""
    res = runner.invoke(app, ["calibrate", "--silicon", str(small_csv), "--json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["error_bands"] is None
