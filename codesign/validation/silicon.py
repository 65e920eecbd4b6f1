"""Measured serving results (``silicon_*.csv``) as a struct of numpy arrays.

One row is one deployment (model, system, engine, precision, parallelism) driven at a
fixed client concurrency with fixed input/output lengths, and the mean TTFT / TPOT it
measured. The column format is documented in ``../shared/validation/README.md``.

Parsing rules (the raw files are uneven; the rules are exercised by the real data, and
``validation.silicon_csv`` applies them):

- integers may be written as floats (``"128.0"``); a fractional value is an error;
- ``attention_dp_size`` (and the per-phase ones) default to 1 when empty or 0;
- ``pp_size`` defaults to 1 when empty; ``moe_tp_size`` / ``moe_ep_size`` are 0 when
  empty (0 = not given, e.g. a dense model);
- disagg ``*_batch_size`` / ``*_num_workers`` are 0 when empty (0 = not recorded);
- agg fields are 0 on disagg rows and disagg fields are 0 on agg rows;
- concurrency comes from a ``concurrency`` column when the file has one, else from
  ``silicon_concurrency=N`` inside ``silicon_data_source``, else it is derived: agg
  ``batch_size * attention_dp_size``; disagg ``decode_batch_size *
  decode_attention_dp_size * decode_num_workers`` (this identity holds on every disagg row
  of silicon_dev.csv that records all four), and an error when neither is possible;
- an empty agg ``batch_size`` is the concurrency per attention-DP rank;
- the measurement columns (``silicon_ttft_ms``, ``silicon_tpot_ms``) are optional as
  columns (a prediction-only file); when present, every row needs a positive number.

Errors name the file, the line number and the column; read leniently
(``silicon_csv.read_silicon``), a row with an error is set aside with that message and
the others are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import CodesignError
from codesign.paths import shared_dir

MODES = ("agg", "disagg")

STR_FIELDS = (
    "id",
    "backend",
    "backend_version",
    "model",
    "system",
    "mode",
    "precision",
    "gemm_quant",
    "moe_quant",
)
_PHASE_FIELDS = ("batch", "workers", "tp", "pp", "dp", "moe_tp", "moe_ep")
AGG_FIELDS = ("batch", "tp", "pp", "dp", "moe_tp", "moe_ep")
DISAGG_FIELDS = tuple(f"{ph}_{f}" for ph in ("p", "d") for f in _PHASE_FIELDS)
INT_FIELDS = ("isl", "osl", "concurrency", *AGG_FIELDS, *DISAGG_FIELDS)
FLOAT_FIELDS = ("ttft_ms", "tpot_ms")


def default_silicon_path() -> Path:
    """``../shared/validation/silicon_dev.csv`` (NotFoundError when the folder is absent)."""
    base = shared_dir(required=True)
    assert base is not None
    return base / "validation" / "silicon_dev.csv"


@dataclass(frozen=True, eq=False)
class SiliconRows:
    """Measured (or to-be-predicted) deployments; every array has length n."""

    id: np.ndarray
    backend: np.ndarray
    backend_version: np.ndarray
    model: np.ndarray
    system: np.ndarray
    mode: np.ndarray
    precision: np.ndarray
    gemm_quant: np.ndarray
    moe_quant: np.ndarray
    isl: np.ndarray
    osl: np.ndarray
    concurrency: np.ndarray
    batch: np.ndarray
    tp: np.ndarray
    pp: np.ndarray
    dp: np.ndarray
    moe_tp: np.ndarray
    moe_ep: np.ndarray
    p_batch: np.ndarray
    p_workers: np.ndarray
    p_tp: np.ndarray
    p_pp: np.ndarray
    p_dp: np.ndarray
    p_moe_tp: np.ndarray
    p_moe_ep: np.ndarray
    d_batch: np.ndarray
    d_workers: np.ndarray
    d_tp: np.ndarray
    d_pp: np.ndarray
    d_dp: np.ndarray
    d_moe_tp: np.ndarray
    d_moe_ep: np.ndarray
    ttft_ms: np.ndarray
    tpot_ms: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.id)
        for name in STR_FIELDS + INT_FIELDS + FLOAT_FIELDS:
            dtype = object if name in STR_FIELDS else np.int64 if name in INT_FIELDS else float
            arr = np.asarray(getattr(self, name), dtype=dtype)
            if arr.ndim != 1 or len(arr) != n:
                raise ValueError(f"SiliconRows.{name}: expected shape ({n},), got {arr.shape}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.id)

    def __repr__(self) -> str:
        models = len(set(self.model.tolist()))
        systems = len(set(self.system.tolist()))
        return f"SiliconRows(n={len(self)}, models={models}, systems={systems})"

    @property
    def has_measurements(self) -> bool:
        """True when every row carries measured TTFT and TPOT."""
        return bool(np.isfinite(self.ttft_ms).all() and np.isfinite(self.tpot_ms).all())

    @property
    def is_agg(self) -> np.ndarray:
        return self.mode == "agg"

    @property
    def disagg_workers_unrecorded(self) -> np.ndarray:
        """Disagg rows that leave a prefill or decode worker count empty: their deployment
        has to be assumed (``perf.unrecorded``)."""
        return (self.mode == "disagg") & ((self.p_workers == 0) | (self.d_workers == 0))

    def subset(self, mask_or_index: Any) -> SiliconRows:
        """Rows selected by a boolean mask (length n) or an integer index array."""
        sel = np.asarray(mask_or_index)
        if sel.dtype == bool and sel.shape != (len(self),):
            raise ValueError(f"boolean mask of shape {sel.shape} for {len(self)} rows")
        return SiliconRows(**{f.name: getattr(self, f.name)[sel] for f in fields(self)})

    def group_keys(self, field: str | Sequence[str]) -> np.ndarray:
        """Per-row group key (object array of str, length n) for one field or several.

        ``"model"`` gives the model ids; ``"model,system"`` (or a sequence of names) joins
        the values with ``" / "``. Any field may be named; numbers are written in decimal.
        """
        names = [s.strip() for s in field.split(",")] if isinstance(field, str) else list(field)
        if not names or any(n not in _ALL_FIELDS for n in names):
            bad = [n for n in names if n not in _ALL_FIELDS] or ["(none)"]
            raise CodesignError(
                f"unknown row field {', '.join(bad)}; known: {', '.join(_ALL_FIELDS)}"
            )
        parts = [getattr(self, n).astype(str).astype(object) for n in names]
        out = parts[0]
        for p in parts[1:]:
            out = out + " / " + p
        return np.asarray(out, dtype=object)

    def row(self, i: int) -> dict[str, Any]:
        """One row as plain Python values (for messages and tests)."""
        return {
            f.name: getattr(self, f.name)[i].item()
            if f.name not in STR_FIELDS
            else getattr(self, f.name)[i]
            for f in fields(self)
        }

    @classmethod
    def from_csv(cls, path: str | Path) -> SiliconRows:
        """Parse a silicon CSV; CodesignError names file, line and column on bad input
        (``silicon_csv.read_silicon`` reads past bad rows instead)."""
        from codesign.validation.silicon_csv import parse_silicon_csv

        return parse_silicon_csv(Path(path), lenient=False)[0]


_ALL_FIELDS = STR_FIELDS + INT_FIELDS + FLOAT_FIELDS
