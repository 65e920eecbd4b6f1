"""A row that cannot be predicted (an unknown system) gets its own reason and leaves the
other rows of its model predicted: one odd row must not cost a whole model's coverage.
A format name the reader does not know is read as the checkpoint's own precision
(``perf.group.row_precisions``), so that row is predicted."""

from __future__ import annotations

import numpy as np

from codesign.perf.group import is_quant_name, read_quant
from codesign.perf.predict import predict_rows


def test_bad_rows_do_not_take_their_model_down(shared_dir, rows_factory) -> None:
    rows = rows_factory(
        5,
        model=["Qwen/Qwen3-32B"] * 4 + ["m/Unknown"],
        system=["h200_sxm", "gh9000", "h200_sxm", "b200_sxm", "h200_sxm"],
        gemm_quant=["fp8", "fp8", "fp3_made_up", "fp8", "fp8"],
        moe_quant=["fp8"] * 5,
        precision=["fp8", "fp8", "fp3_made_up", "fp8", "fp8"],
        tp=[2] * 5,
        batch=[16] * 5,
        concurrency=[16] * 5,
        isl=[1024] * 5,
        osl=[256] * 5,
    )
    ttft, tpot, why = predict_rows(rows)
    good = [0, 2, 3]
    assert np.isfinite(ttft[good]).all() and np.isfinite(tpot[good]).all()
    assert (why[good] == "").all()
    assert "unknown system 'gh9000'" in why[1]
    assert why[4] != "" and np.isnan(ttft[[1, 4]]).all()
    # the good rows are predicted as they are on their own
    alone, _, _ = predict_rows(rows.subset(good))
    assert np.allclose(alone, ttft[good])


def test_format_names_in_any_case_and_hwmodels_spelling() -> None:
    # the benchmark tables' names, then hwmodels' own names and aliases, any case
    assert [read_quant(n) for n in ("FP8", "fp8_block", "w4a16", "int4", "bfloat16")] == [
        "fp8",
        "fp8_block",
        "int4_wo",
        "int4_wo",
        "bf16",
    ]
    assert read_quant("nonsense") is None and read_quant("") is None
    assert is_quant_name("W4A16") and not is_quant_name("nonsense")
