"""Measured serving results (``silicon_*.csv``) as a struct of numpy arrays.

One row is one deployment (model, system, engine, precision, parallelism) driven at a
fixed client concurrency with fixed input/output lengths, and the mean TTFT / TPOT it
measured. The column format is documented in ``../shared/validation/README.md``.

Parsing rules (the raw files are uneven; every rule below is exercised by the real data):

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
- the measurement columns (``silicon_ttft_ms``, ``silicon_tpot_ms``) are optional as
  columns (a prediction-only file); when present, every row needs a positive number.

Errors name the file, the line number and the column.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import CodesignError, NotFoundError
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

# field -> CSV column
_STR_COLUMNS = {
    "id": "id",
    "backend": "backend",
    "backend_version": "backend_version",
    "system": "system",
    "mode": "mode",
    "precision": "precision",
    "gemm_quant": "gemm_quant_mode",
    "moe_quant": "moe_quant_mode",
}
_MODEL_COLUMNS = ("model_path", "model")
_REQUIRED_COLUMNS = ("id", "backend", "system", "mode", "isl", "osl")
_AGG_COLUMNS = {
    "batch": "batch_size",
    "tp": "tp_size",
    "pp": "pp_size",
    "dp": "attention_dp_size",
    "moe_tp": "moe_tp_size",
    "moe_ep": "moe_ep_size",
}
_PHASE_COLUMNS = {
    "batch": "batch_size",
    "workers": "num_workers",
    "tp": "tp_size",
    "pp": "pp_size",
    "dp": "attention_dp_size",
    "moe_tp": "moe_tp_size",
    "moe_ep": "moe_ep_size",
}
_MEASURED_COLUMNS = {"ttft_ms": "silicon_ttft_ms", "tpot_ms": "silicon_tpot_ms"}
# How an empty cell is read: None = required (error), else the default value.
_AGG_EMPTY: dict[str, int | None] = {
    "batch": None,
    "tp": None,
    "pp": 1,
    "dp": 1,
    "moe_tp": 0,
    "moe_ep": 0,
}
_PHASE_EMPTY: dict[str, int | None] = {**_AGG_EMPTY, "batch": 0, "workers": 0}
_CONCURRENCY_RE = re.compile(r"silicon_concurrency\s*=\s*([0-9.eE+]+)")


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
        """Parse a silicon CSV; CodesignError names file, line and column on bad input."""
        return _parse_csv(Path(path))


_ALL_FIELDS = STR_FIELDS + INT_FIELDS + FLOAT_FIELDS


class _Line:
    """Cell access for one CSV record with errors that point at it."""

    def __init__(self, path: Path, line: int, record: dict[str, str], header: set[str]):
        self.path, self.line, self.record, self.header = path, line, record, header

    def error(self, column: str, problem: str) -> CodesignError:
        return CodesignError(f"{self.path}:{self.line}: column {column!r}: {problem}")

    def text(self, column: str) -> str:
        return (self.record.get(column) or "").strip()

    def require_column(self, column: str, why: str) -> None:
        if column not in self.header:
            raise self.error(column, f"missing column (needed by {why})")

    def number(self, column: str) -> float:
        raw = self.text(column)
        try:
            value = float(raw)
        except ValueError:
            raise self.error(column, f"not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise self.error(column, f"not a finite number: {raw!r}")
        return value

    def integer(self, column: str, empty: int | None, minimum: int = 0) -> int:
        """A non-negative integer ("128.0" accepted); ``empty`` is the default for ''."""
        raw = self.text(column)
        if raw == "":
            if empty is None:
                raise self.error(column, "empty, a value is required")
            return empty
        value = self.number(column)
        if value != int(value):
            raise self.error(column, f"not an integer: {raw!r}")
        if value < minimum:
            raise self.error(column, f"must be >= {minimum}, got {raw!r}")
        return int(value)


def _parse_concurrency(ln: _Line, vals: dict[str, Any]) -> int:
    if "concurrency" in ln.header and ln.text("concurrency"):
        return ln.integer("concurrency", None, minimum=1)
    src = ln.text("silicon_data_source")
    m = _CONCURRENCY_RE.search(src)
    if m:
        try:
            value = float(m.group(1))
        except ValueError:
            value = -1.0
        if value < 1 or value != int(value):
            raise ln.error("silicon_data_source", f"bad silicon_concurrency={m.group(1)!r}")
        return int(value)
    if vals["mode"] == "agg":
        return vals["batch"] * vals["dp"]
    derived = vals["d_batch"] * vals["d_dp"] * vals["d_workers"]
    if derived > 0:
        return derived
    raise ln.error(
        "silicon_data_source",
        "no silicon_concurrency=N, and decode_batch_size/decode_num_workers are empty",
    )


def _parse_phase(ln: _Line, vals: dict[str, Any], prefix: str, column_prefix: str) -> None:
    for name, col in _PHASE_COLUMNS.items():
        column = column_prefix + col
        default = _PHASE_EMPTY[name]
        if default is None:
            ln.require_column(column, "disagg rows")
        minimum = 1 if name == "tp" else 0
        value = ln.integer(column, default, minimum) if column in ln.header else default
        if name in ("dp", "pp") and value == 0:
            value = 1
        vals[f"{prefix}_{name}"] = value


def _parse_record(ln: _Line, model_col: str, measured: bool) -> dict[str, Any]:
    vals: dict[str, Any] = {f: ln.text(c) for f, c in _STR_COLUMNS.items()}
    vals["model"] = ln.text(model_col)
    for f in ("id", "backend", "system", "model"):
        if not vals[f]:
            raise ln.error(model_col if f == "model" else f, "empty, a value is required")
    if vals["mode"] not in MODES:
        raise ln.error("mode", f"unknown mode {vals['mode']!r} (expected agg or disagg)")
    vals["isl"] = ln.integer("isl", None, minimum=1)
    vals["osl"] = ln.integer("osl", None, minimum=1)
    for name in AGG_FIELDS:
        vals[name] = 0
    for name in DISAGG_FIELDS:
        vals[name] = 0
    if vals["mode"] == "agg":
        for name, column in _AGG_COLUMNS.items():
            default = _AGG_EMPTY[name]
            if default is None:
                ln.require_column(column, "agg rows")
            minimum = 1 if name in ("batch", "tp") else 0
            value = ln.integer(column, default, minimum) if column in ln.header else default
            vals[name] = 1 if name in ("dp", "pp") and value == 0 else value
    else:
        _parse_phase(ln, vals, "p", "prefill_")
        _parse_phase(ln, vals, "d", "decode_")
    vals["concurrency"] = _parse_concurrency(ln, vals)
    for name, column in _MEASURED_COLUMNS.items():
        if not measured:
            vals[name] = math.nan
            continue
        if not ln.text(column):
            raise ln.error(column, "empty, a measurement is required")
        value = ln.number(column)
        if value <= 0:
            raise ln.error(column, f"must be > 0, got {ln.text(column)!r}")
        vals[name] = value
    return vals


def _parse_csv(path: Path) -> SiliconRows:
    if not path.is_file():
        raise NotFoundError(f"silicon CSV {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = {h.strip() for h in (reader.fieldnames or [])}
        if not header:
            raise CodesignError(f"{path}:1: empty file, expected a CSV header")
        if reader.fieldnames != [h.strip() for h in reader.fieldnames or []]:
            reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
        model_col = next((c for c in _MODEL_COLUMNS if c in header), None)
        missing = [c for c in _REQUIRED_COLUMNS if c not in header]
        if model_col is None:
            missing.append("model_path")
        if missing:
            raise CodesignError(f"{path}:1: missing column(s) {', '.join(missing)}")
        has = [c in header for c in _MEASURED_COLUMNS.values()]
        if any(has) and not all(has):
            absent = [c for c in _MEASURED_COLUMNS.values() if c not in header]
            raise CodesignError(f"{path}:1: missing column {absent[0]} (the other is present)")
        measured = all(has)
        columns: dict[str, list[Any]] = {name: [] for name in _ALL_FIELDS}
        first_line: dict[str, int] = {}
        for record in reader:
            ln = _Line(path, reader.line_num, record, header)
            if None in record:
                raise ln.error("(extra)", f"{len(record[None])} more cells than header columns")
            if all(not (v or "").strip() for v in record.values()):
                continue  # blank line
            vals = _parse_record(ln, model_col, measured)
            if vals["id"] in first_line:
                raise ln.error("id", f"duplicate id (first on line {first_line[vals['id']]})")
            first_line[vals["id"]] = reader.line_num
            for name in _ALL_FIELDS:
                columns[name].append(vals[name])
    if not first_line:
        raise CodesignError(f"{path}: no data rows")
    arrays: dict[str, np.ndarray] = {}
    for name in _ALL_FIELDS:
        if name in STR_FIELDS:
            arr = np.empty(len(columns[name]), dtype=object)
            arr[:] = columns[name]
            arrays[name] = arr
        elif name in INT_FIELDS:
            arrays[name] = np.asarray(columns[name], dtype=np.int64)
        else:
            arrays[name] = np.asarray(columns[name], dtype=np.float64)
    return SiliconRows(**arrays)
