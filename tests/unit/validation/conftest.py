"""Fixtures for codesign.validation: small hand-built rows and CSV writers."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesign.validation.silicon import FLOAT_FIELDS, INT_FIELDS, STR_FIELDS, SiliconRows

COLUMNS = [
    "id",
    "silicon_data_source",
    "backend",
    "backend_version",
    "model_path",
    "system",
    "precision",
    "mode",
    "isl",
    "osl",
    "gemm_quant_mode",
    "moe_quant_mode",
    "batch_size",
    "tp_size",
    "pp_size",
    "attention_dp_size",
    "moe_tp_size",
    "moe_ep_size",
    "prefill_batch_size",
    "prefill_num_workers",
    "prefill_tp_size",
    "prefill_pp_size",
    "prefill_attention_dp_size",
    "prefill_moe_tp_size",
    "prefill_moe_ep_size",
    "decode_batch_size",
    "decode_num_workers",
    "decode_tp_size",
    "decode_pp_size",
    "decode_attention_dp_size",
    "decode_moe_tp_size",
    "decode_moe_ep_size",
    "silicon_ttft_ms",
    "silicon_tpot_ms",
]

# An agg row in the shape of the real file (floats for integers, empty disagg fields).
AGG = {
    "id": "a1",
    "silicon_data_source": "src; silicon_concurrency=64; x=1",
    "backend": "vllm",
    "backend_version": "0.19.0",
    "model_path": "Qwen/Qwen3-32B",
    "system": "h200_sxm",
    "precision": "fp8",
    "mode": "agg",
    "isl": "1024",
    "osl": "256",
    "gemm_quant_mode": "fp8",
    "moe_quant_mode": "fp8",
    "batch_size": "64.0",
    "tp_size": "2.0",
    "pp_size": "1.0",
    "attention_dp_size": "",
    "moe_tp_size": "1.0",
    "moe_ep_size": "1.0",
    "silicon_ttft_ms": "500.0",
    "silicon_tpot_ms": "20.0",
}
DISAGG = {
    **{k: v for k, v in AGG.items() if k not in ("batch_size", "tp_size", "pp_size")},
    "id": "d1",
    "silicon_data_source": "src; silicon_concurrency=256",
    "backend_version": "",
    "mode": "disagg",
    "moe_tp_size": "",
    "moe_ep_size": "",
    "prefill_batch_size": "1.0",
    "prefill_num_workers": "2.0",
    "prefill_tp_size": "1.0",
    "prefill_pp_size": "1.0",
    "prefill_attention_dp_size": "8.0",
    "prefill_moe_tp_size": "1.0",
    "prefill_moe_ep_size": "8.0",
    "decode_batch_size": "8.0",
    "decode_num_workers": "1.0",
    "decode_tp_size": "1.0",
    "decode_pp_size": "1.0",
    "decode_attention_dp_size": "32.0",
    "decode_moe_tp_size": "1.0",
    "decode_moe_ep_size": "32.0",
}


@pytest.fixture
def write_rows(tmp_path: Path) -> Callable[..., Path]:
    """write_rows([{column: value}], columns=COLUMNS) -> a CSV in tmp_path (missing cells '')."""

    def _write(records: Sequence[dict[str, str]], columns: Sequence[str] = COLUMNS) -> Path:
        path = tmp_path / "rows.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for rec in records:
                writer.writerow([rec.get(c, "") for c in columns])
        return path

    return _write


@pytest.fixture
def agg() -> dict[str, str]:
    return dict(AGG)


@pytest.fixture
def disagg() -> dict[str, str]:
    return dict(DISAGG)


def make_rows(n: int, **columns: Any) -> SiliconRows:
    """n agg rows with plausible defaults; keyword arrays override fields."""
    base: dict[str, Any] = {name: np.array([""] * n, dtype=object) for name in STR_FIELDS}
    base["id"] = np.array([f"r{i}" for i in range(n)], dtype=object)
    base.update(
        backend=np.array(["vllm"] * n, dtype=object),
        model=np.array(["m/A"] * n, dtype=object),
        system=np.array(["h100_sxm"] * n, dtype=object),
        mode=np.array(["agg"] * n, dtype=object),
    )
    for name in INT_FIELDS:
        base[name] = np.zeros(n, dtype=np.int64)
    for name in ("isl", "osl"):
        base[name] = np.full(n, 1024, dtype=np.int64)
    for name in ("concurrency", "batch", "tp", "pp", "dp"):
        base[name] = np.ones(n, dtype=np.int64)
    for name in FLOAT_FIELDS:
        base[name] = np.full(n, np.nan)
    for key, value in columns.items():
        base[key] = np.asarray(value, dtype=object if key in STR_FIELDS else None)
    return SiliconRows(**base)


@pytest.fixture
def rows_factory() -> Callable[..., SiliconRows]:
    """make_rows(n, **columns) as a fixture."""
    return make_rows
