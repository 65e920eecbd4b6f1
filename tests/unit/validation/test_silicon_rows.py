"""SiliconRows: the measured CSV as arrays, parsed exactly, with errors that point at the cell."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from codesign.errors import CodesignError
from codesign.validation.silicon import SiliconRows

WriteRows = Callable[..., Path]


@pytest.fixture(scope="module")
def dev_rows(shared_dir: Path) -> SiliconRows:
    return SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")


def _one(rows: SiliconRows, row_id: str) -> dict:
    (idx,) = np.flatnonzero(rows.id == row_id)
    return rows.row(int(idx))


# --- the real file ---------------------------------------------------------------------


def test_dev_file_counts(dev_rows: SiliconRows) -> None:
    # README: 3,188 rows; 2,319 agg + 869 disagg; every row measured.
    assert len(dev_rows) == 3188
    assert int(dev_rows.is_agg.sum()) == 2319
    assert int((dev_rows.mode == "disagg").sum()) == 869
    assert dev_rows.has_measurements
    assert dev_rows.isl.dtype == np.int64 and dev_rows.ttft_ms.dtype == np.float64
    assert set(dev_rows.system.tolist()) == {
        "h100_sxm",
        "h200_sxm",
        "b200_sxm",
        "b300_sxm",
        "gb200",
    }


def test_dev_agg_row_fields(dev_rows: SiliconRows) -> None:
    # First data line of silicon_dev.csv: MiniMax-M2.5 on B300, vLLM, "128.0,4.0,1.0,1.0,4.0,1.0".
    r = _one(dev_rows, "minimaxm2_5_b300_vllm_fp8_agg_8192x1024_c128_cfg733")
    assert r["backend"] == "vllm" and r["backend_version"] == "0.19.0"
    assert r["model"] == "MiniMaxAI/MiniMax-M2.5" and r["system"] == "b300_sxm"
    assert (r["mode"], r["precision"], r["gemm_quant"], r["moe_quant"]) == (
        "agg",
        "fp8",
        "fp8",
        "fp8",
    )
    assert (r["isl"], r["osl"], r["concurrency"]) == (8192, 1024, 128)
    assert (r["batch"], r["tp"], r["pp"], r["dp"], r["moe_tp"], r["moe_ep"]) == (128, 4, 1, 1, 4, 1)
    assert r["p_tp"] == 0 and r["d_batch"] == 0 and r["d_workers"] == 0
    assert r["ttft_ms"] == pytest.approx(972.3109823355117)
    assert r["tpot_ms"] == pytest.approx(33.442908754168066)


def test_dev_disagg_row_fields(dev_rows: SiliconRows) -> None:
    # DeepSeek-V3 on GB200, 1 prefill worker (TP1 DP8 EP8), 1 decode worker (DP32 EP32, batch 8).
    r = _one(dev_rows, "dsr1_gb200_trtllm_fp8_disagg_1024x1024_c256_cfg375")
    assert r["model"] == "deepseek-ai/DeepSeek-V3" and r["mode"] == "disagg"
    assert r["concurrency"] == 256
    assert (r["batch"], r["tp"], r["dp"]) == (0, 0, 0)
    prefill = [r[f"p_{k}"] for k in ("batch", "workers", "tp", "pp", "dp", "moe_tp", "moe_ep")]
    decode = [r[f"d_{k}"] for k in ("batch", "workers", "tp", "pp", "dp", "moe_tp", "moe_ep")]
    assert prefill == [1, 1, 1, 1, 8, 1, 8]
    assert decode == [8, 1, 1, 1, 32, 1, 32]
    assert r["ttft_ms"] == pytest.approx(667.3451884321366)


def test_dev_rows_without_silicon_concurrency(dev_rows: SiliconRows) -> None:
    # No silicon_concurrency in the source: agg uses batch_size x attention DP (144 x 1);
    # disagg uses decode batch x decode DP x decode workers (48 x 1 x 11).
    agg = _one(dev_rows, "qwen3_32b_qwen3_32b_gb200_trtllm_agg_4000x1000_c_tp1_epnone_1")
    assert (agg["batch"], agg["dp"], agg["concurrency"]) == (144, 1, 144)
    dis = _one(dev_rows, "qwen3_32b_qwen3_32b_h100_sxm_sglang_disagg_4000x1000_c_tpnone_epnone_1")
    assert (dis["d_batch"], dis["d_dp"], dis["d_workers"], dis["concurrency"]) == (48, 1, 11, 528)


def test_dev_rows_empty_and_zero_defaults(dev_rows: SiliconRows) -> None:
    # attention_dp_size "0.0" reads as 1; disagg rows without batch/workers read as 0.
    r = _one(dev_rows, "qwen_qwen3_32b_qwen_qwen3_32b_gb200_trtllm_agg_2000x500_c288_tp2_epnone_1")
    assert (r["dp"], r["moe_tp"], r["moe_ep"], r["concurrency"]) == (1, 0, 0, 288)
    d = _one(
        dev_rows, "2026_03_25_deepseek_r1_gb200_trtllm_fp4_disagg_1024x8192_c2048_tp4_0_ep4_0_352"
    )
    assert (d["p_batch"], d["p_workers"], d["d_batch"], d["d_workers"]) == (0, 0, 0, 0)
    assert (d["p_tp"], d["d_tp"], d["d_moe_tp"], d["d_moe_ep"], d["concurrency"]) == (
        4,
        32,
        8,
        4,
        2048,
    )
    assert d["backend_version"] == "0.8.1.post2" and d["precision"] == "fp4"
    # dp is never 0 within a row's own mode; the other mode's fields are all 0.
    agg = dev_rows.is_agg
    assert (dev_rows.dp[agg] >= 1).all() and (dev_rows.p_dp[~agg] >= 1).all()
    assert (dev_rows.d_tp[agg] == 0).all() and (dev_rows.tp[~agg] == 0).all()


# --- small files ---------------------------------------------------------------------


def test_small_file_parses_floats_and_defaults(write_rows: WriteRows, agg, disagg) -> None:
    rows = SiliconRows.from_csv(write_rows([agg, disagg]))
    assert len(rows) == 2
    a, d = rows.row(0), rows.row(1)
    assert (a["batch"], a["tp"], a["pp"], a["dp"], a["concurrency"]) == (64, 2, 1, 1, 64)
    assert d["backend_version"] == "" and d["concurrency"] == 256
    assert (d["p_workers"], d["p_dp"], d["d_dp"], d["d_moe_ep"]) == (2, 8, 32, 32)
    assert rows.id.dtype == object and rows.tp.dtype == np.int64


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("db-dump; config_id=7; silicon_concurrency=32; measured=2026", 32),
        ("silicon_concurrency=16", 16),
        ("silicon_concurrency = 8.0 ; x", 8),
        ("source_file=x.csv; gtl_task_id=3", 64 * 4),  # absent: batch 64 x attention DP 4
    ],
)
def test_concurrency_from_source(write_rows: WriteRows, agg, source: str, expected: int) -> None:
    agg.update(silicon_data_source=source, attention_dp_size="4.0")
    assert SiliconRows.from_csv(write_rows([agg])).concurrency.tolist() == [expected]


def test_concurrency_column_wins(write_rows: WriteRows, agg) -> None:
    path = write_rows([{**agg, "concurrency": "12"}], columns=[*agg.keys(), "concurrency"])
    assert SiliconRows.from_csv(path).concurrency.tolist() == [12]


def test_disagg_without_any_concurrency_is_an_error(write_rows: WriteRows, agg, disagg) -> None:
    disagg.update(silicon_data_source="nothing here", decode_batch_size="", decode_num_workers="")
    with pytest.raises(CodesignError, match=r"rows\.csv:3: column 'silicon_data_source'"):
        SiliconRows.from_csv(write_rows([agg, disagg]))


def test_bad_silicon_concurrency_value(write_rows: WriteRows, agg) -> None:
    agg["silicon_data_source"] = "silicon_concurrency=0"
    with pytest.raises(CodesignError, match="bad silicon_concurrency"):
        SiliconRows.from_csv(write_rows([agg]))


@pytest.mark.parametrize(
    ("line", "column", "value", "message"),
    [
        (2, "isl", "abc", r":2: column 'isl': not a number: 'abc'"),
        (3, "tp_size", "1.5", r":3: column 'tp_size': not an integer: '1.5'"),
        (4, "mode", "both", r":4: column 'mode': unknown mode 'both'"),
        (3, "tp_size", "", r":3: column 'tp_size': empty, a value is required"),
        (2, "osl", "-4", r":2: column 'osl': must be >= 1"),
        (4, "silicon_ttft_ms", "", r":4: column 'silicon_ttft_ms': empty, a measurement"),
        (3, "silicon_tpot_ms", "0", r":3: column 'silicon_tpot_ms': must be > 0"),
        (2, "model_path", "", r":2: column 'model_path': empty"),
        (4, "isl", "nan", r":4: column 'isl': not a finite number"),
    ],
)
def test_bad_cell_names_line_and_column(
    write_rows: WriteRows, agg, line: int, column: str, value: str, message: str
) -> None:
    records = [{**agg, "id": f"r{i}"} for i in range(3)]  # data lines 2, 3, 4
    records[line - 2][column] = value
    path = write_rows(records)
    with pytest.raises(CodesignError, match=message) as exc:
        SiliconRows.from_csv(path)
    assert str(exc.value).startswith(str(path))


def test_missing_columns(write_rows: WriteRows, agg, disagg) -> None:
    no_isl = [c for c in agg if c != "isl"]
    with pytest.raises(CodesignError, match=r"rows\.csv:1: missing column\(s\) isl"):
        SiliconRows.from_csv(write_rows([agg], columns=no_isl))
    # A column only agg rows need is reported on the first agg row.
    no_tp = [c for c in dict.fromkeys([*disagg, *agg]) if c != "tp_size"]
    with pytest.raises(CodesignError, match=r":3: column 'tp_size': missing column"):
        SiliconRows.from_csv(write_rows([disagg, agg], columns=no_tp))
    one_measure = [c for c in agg if c != "silicon_tpot_ms"]
    with pytest.raises(CodesignError, match="missing column silicon_tpot_ms"):
        SiliconRows.from_csv(write_rows([agg], columns=one_measure))


def test_duplicate_id_and_extra_cells(write_rows: WriteRows, agg, tmp_path: Path) -> None:
    with pytest.raises(CodesignError, match=r":3: column 'id': duplicate id \(first on line 2\)"):
        SiliconRows.from_csv(write_rows([agg, agg]))
    path = tmp_path / "extra.csv"
    path.write_text("id,backend,model_path,system,mode,isl,osl\nx,vllm,m,s,agg,1,1,9\n")
    with pytest.raises(CodesignError, match=r"extra\.csv:2: .*more cells than header"):
        SiliconRows.from_csv(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(CodesignError, match="does not exist"):
        SiliconRows.from_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CodesignError, match="empty file"):
        SiliconRows.from_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("id,backend,model_path,system,mode,isl,osl\n")
    with pytest.raises(CodesignError, match="no data rows"):
        SiliconRows.from_csv(tmp_path / "header.csv")


def test_prediction_only_file(write_rows: WriteRows, agg) -> None:
    # No measurement columns, only the agg columns a user would write, 'model' as the name.
    cols = ["id", "backend", "model", "system", "mode", "isl", "osl", "batch_size", "tp_size"]
    rec = {**agg, "model": "Qwen/Qwen3-32B", "batch_size": "16"}
    rows = SiliconRows.from_csv(write_rows([rec], columns=cols))
    r = rows.row(0)
    assert r["model"] == "Qwen/Qwen3-32B" and r["concurrency"] == 16
    assert (r["pp"], r["dp"], r["moe_tp"]) == (1, 1, 0)
    assert math.isnan(r["ttft_ms"]) and math.isnan(r["tpot_ms"])
    assert not rows.has_measurements


# --- the container --------------------------------------------------------------------


def test_subset_group_keys_and_immutability(rows_factory) -> None:
    rows = rows_factory(
        4,
        model=["m/A", "m/B", "m/A", "m/C"],
        system=["h100_sxm", "h100_sxm", "b200_sxm", "b200_sxm"],
        tp=[1, 2, 4, 8],
    )
    sub = rows.subset(rows.model == "m/A")
    assert len(sub) == 2 and sub.tp.tolist() == [1, 4] and sub.id.tolist() == ["r0", "r2"]
    assert rows.subset(np.array([3, 0])).tp.tolist() == [8, 1]
    assert rows.group_keys("model").tolist() == ["m/A", "m/B", "m/A", "m/C"]
    assert rows.group_keys("model,system")[2] == "m/A / b200_sxm"
    assert rows.group_keys(["system", "tp"])[3] == "b200_sxm / 8"
    with pytest.raises(CodesignError, match="unknown row field colour"):
        rows.group_keys("colour")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows.tp = np.zeros(4)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        rows.tp[0] = 3
    with pytest.raises(ValueError, match="boolean mask"):
        rows.subset(np.array([True, False]))
    with pytest.raises(ValueError, match=r"SiliconRows.tp: expected shape \(4,\)"):
        dataclasses.replace(rows, tp=np.ones(3, dtype=np.int64))


def test_empty_agg_batch_is_the_concurrency_per_dp_rank(write_rows: WriteRows, agg) -> None:
    # silicon_concurrency=64 with 4 attention-DP ranks: 16 clients per rank
    rows = SiliconRows.from_csv(write_rows([{**agg, "batch_size": "", "attention_dp_size": "4"}]))
    assert (rows.batch[0], rows.concurrency[0]) == (16, 64)
    no_conc = {**agg, "batch_size": "", "silicon_data_source": "src"}
    with pytest.raises(CodesignError, match="'batch_size': empty, and no silicon_concurrency"):
        SiliconRows.from_csv(write_rows([no_conc]))


def test_lenient_read_sets_bad_rows_aside(write_rows: WriteRows, agg, disagg) -> None:
    from codesign.validation.silicon_csv import read_silicon

    disagg.update(silicon_data_source="nothing", decode_batch_size="", decode_num_workers="")
    records = [
        {**agg, "id": "ok1"},
        {**agg, "id": "bad_isl", "isl": "lots"},
        disagg,  # no concurrency anywhere
        {**agg, "id": "ok1"},  # duplicate id
        {**agg, "id": "ok2"},
    ]
    path = write_rows(records)
    rows, rejected = read_silicon(path)
    assert list(rows.id) == ["ok1", "ok2"]
    assert [(r["line"], r["id"]) for r in rejected] == [(3, "bad_isl"), (4, "d1"), (5, "ok1")]
    assert "column 'isl': not a number" in rejected[0]["reason"]
    assert "duplicate id (first on line 2)" in rejected[2]["reason"]
    # read strictly, the first of them is the error
    with pytest.raises(CodesignError, match=r":3: column 'isl'"):
        SiliconRows.from_csv(path)
    # nothing readable: an error that says why
    with pytest.raises(CodesignError, match="no data rows .3 set aside"):
        read_silicon(write_rows([{**agg, "isl": "x", "id": f"b{i}"} for i in range(3)]))


def test_engine_and_mode_spellings(write_rows: WriteRows, agg) -> None:
    records = [
        {**agg, "id": "a", "backend": "TensorRT-LLM", "mode": "AGG"},
        {**agg, "id": "b", "backend": "dynamo-sglang"},
        {**agg, "id": "c", "backend": "vLLM"},
        {**agg, "id": "d", "backend": "lmdeploy"},
    ]
    rows = SiliconRows.from_csv(write_rows(records))
    assert list(rows.backend) == ["trtllm", "sglang", "vllm", "lmdeploy"]
    assert list(rows.mode) == ["agg"] * 4
