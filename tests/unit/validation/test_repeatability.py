"""repeatability: configurations measured more than once, worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codesign.validation.repeatability import (
    configuration_ids,
    debiased_errors,
    repeatability,
)
from codesign.validation.report import accuracy_report


@pytest.fixture
def six(rows_factory):
    """r0/r1: one configuration measured 100 and 400 ms TTFT (4x apart), TPOT 10 both;
    r2/r3: another (isl 2048) at 50 and 50.5 ms (1% apart: agree); r4: a third (isl 4096);
    r5: r0's configuration on another engine version, so a configuration of its own."""
    return rows_factory(
        6,
        isl=[1024, 1024, 2048, 2048, 4096, 1024],
        backend_version=["1.0", "1.0", "1.0", "1.0", "1.0", "2.0"],
        ttft_ms=[100.0, 400.0, 50.0, 50.5, 70.0, 90.0],
        tpot_ms=[10.0, 10.0, 5.0, 5.0, 7.0, 9.0],
    )


def test_configuration_ids_group_equal_recorded_fields(six) -> None:
    ids = configuration_ids(six)
    assert ids[0] == ids[1] and ids[2] == ids[3]
    assert len({ids[0], ids[2], ids[4], ids[5]}) == 4


def test_repeats_and_their_spread_by_hand(six) -> None:
    # r0 predicted 150 (APE 0.5), r1 300 (APE 0.25); TPOT 12 (0.2) and 9 (0.1)
    pred_t = np.array([150.0, 300.0, 50.0, 50.0, 70.0, 90.0])
    pred_p = np.array([12.0, 9.0, 5.0, 5.0, 7.0, 9.0])
    rep = repeatability(six, pred_t, pred_p, np.ones(6, bool))
    assert rep["configurations_repeated"] == 2 and rep["rows_repeated"] == 4
    assert rep["configurations_disagreeing"] == 1 and rep["rows_disagreeing"] == 2
    assert rep["ttft_spread_median"] == pytest.approx(4.0)
    assert rep["tpot_spread_median"] == pytest.approx(1.0)
    # geometric mean of 100 and 400 is 200: APE 1.0 for r0 and 0.5 for r1
    assert rep["repeat_ttft_median_ape"] == pytest.approx(0.75)
    assert rep["repeat_tpot_median_ape"] == pytest.approx(0.0)
    assert rep["model_ttft_median_ape"] == pytest.approx(0.375)
    assert rep["model_tpot_median_ape"] == pytest.approx(0.15)


def test_unpredicted_rows_are_counted_but_not_scored(six) -> None:
    pred = np.array([150.0, np.nan, 50.0, 50.0, 70.0, 90.0])
    ok = np.isfinite(pred)
    rep = repeatability(six, pred, np.full(6, 10.0), ok)
    assert rep["rows_disagreeing"] == 2
    assert rep["repeat_ttft_median_ape"] == pytest.approx(1.0)  # r0 alone
    assert rep["model_ttft_median_ape"] == pytest.approx(0.5)


def test_tolerance_decides_what_disagrees(six) -> None:
    pred = six.ttft_ms.copy()
    tight = repeatability(six, pred, six.tpot_ms, np.ones(6, bool), tolerance=0.005)
    assert tight["configurations_disagreeing"] == 2 and tight["rows_disagreeing"] == 4
    loose = repeatability(six, pred, six.tpot_ms, np.ones(6, bool), tolerance=3.5)
    assert loose["configurations_disagreeing"] == 0
    assert loose["repeat_ttft_median_ape"] is None and loose["ttft_spread_median"] is None


def test_no_repeats(rows_factory) -> None:
    rows = rows_factory(2, isl=[1024, 2048], ttft_ms=[1.0, 2.0], tpot_ms=[1.0, 1.0])
    rep = repeatability(rows, rows.ttft_ms, rows.tpot_ms, np.ones(2, bool))
    assert rep["configurations_repeated"] == 0 and rep["model_ttft_median_ape"] is None


def test_debiased_errors_by_hand(rows_factory) -> None:
    """Two engines' groups, every TTFT measured 100 ms. vLLM predicted 50, 25, 50 (a 2x
    bias, median measured / predicted 2: rescaled 100, 50, 100, APE 0, 0.5, 0); TRT-LLM
    100, 200, 50 (no bias: APE 0, 1.0, 0.5). Left: median of 0, 0, 0, 0.5, 0.5, 1.0 =
    0.25, where the model's own APE is 0.5."""
    rows = rows_factory(
        6,
        backend=["vllm"] * 3 + ["trtllm"] * 3,
        ttft_ms=[100.0] * 6,
        tpot_ms=[10.0] * 6,
    )
    pred_t = np.array([50.0, 25.0, 50.0, 100.0, 200.0, 50.0])
    deb = debiased_errors(rows, pred_t, rows.tpot_ms, np.ones(6, bool))
    assert deb["groups"] == 2 and deb["fields"] == ["model", "system", "mode", "backend"]
    assert deb["ttft_median_ape"] == pytest.approx(0.25)
    assert deb["tpot_median_ape"] == pytest.approx(0.0)
    rep = accuracy_report(rows, pred_t, rows.tpot_ms, np.full(6, "", dtype=object))
    assert rep["ttft_median_ape"] == pytest.approx(0.5)
    assert rep["debiased"]["ttft_median_ape"] == pytest.approx(0.25)
    # an unpredicted row is left out of its group's bias and of the median
    pred_t[1] = np.nan
    deb = debiased_errors(rows, pred_t, rows.tpot_ms, np.isfinite(pred_t))
    assert deb["ttft_median_ape"] == pytest.approx(0.0)  # 0, 0 | 0, 1.0, 0.5


def test_accuracy_report_carries_it_only_with_measurements(six, rows_factory) -> None:
    rep = accuracy_report(six, six.ttft_ms, six.tpot_ms, np.full(6, "", dtype=object))
    assert rep["repeatability"]["rows_disagreeing"] == 2
    json.dumps(rep)  # JSON-ready
    unmeasured = rows_factory(2)
    rep = accuracy_report(unmeasured, [1.0, 2.0], [1.0, 1.0], np.full(2, "", dtype=object))
    assert rep["repeatability"] is None and rep["debiased"] is None


def test_validate_prints_the_repeats(
    monkeypatch: pytest.MonkeyPatch, write_rows: Callable[..., Path], agg, tmp_path: Path
) -> None:
    import typer

    from codesign.cli import perf as perf_cli

    class Api:
        def load_calibration(self, path=None):
            return None

        def predict_rows(self, rows, calib):
            return rows.ttft_ms * 0 + 200.0, rows.tpot_ms, np.full(len(rows), "", dtype=object)

    api = Api()
    monkeypatch.setattr(perf_cli, "_perf_api", lambda: api)
    app = typer.Typer()
    app.callback()(lambda: None)
    perf_cli.perf_commands(app)
    csv_path = write_rows(
        [
            {**agg, "id": "a", "silicon_ttft_ms": "100"},
            {**agg, "id": "b", "silicon_ttft_ms": "400"},
        ]
    )
    res = CliRunner().invoke(app, ["validate", "--silicon", str(csv_path)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "Repeats: 1 configurations measured more than once (2 rows)" in text
    # both runs predicted at their geometric mean, 200 ms: APE 1.0 and 0.5 -> 75%
    assert "scores TTFT 75.0% / TPOT 0.0% median APE; this model: TTFT 75.0%" in text
    # one group, measured / predicted 0.5 and 2: no bias to take out, the same 75%
    assert "group (1) by its median measured/predicted leaves TTFT 75.0% / TPOT 0.0%" in text
