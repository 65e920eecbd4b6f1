"""Read a silicon CSV (``../shared/validation/README.md``) into ``SiliconRows``.

Parsing rules are listed in ``validation.silicon``. A problem in the file's header
(missing columns, no rows) is an error. A problem in one row is an error naming the file,
line and column when reading strictly (``SiliconRows.from_csv``); read leniently
(``read_silicon``), the row is set aside with that message and the others are read, so
that one odd row in a large measured file does not cost the report on all the others.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import CodesignError, NotFoundError
from codesign.validation.silicon import (
    _ALL_FIELDS,
    AGG_FIELDS,
    DISAGG_FIELDS,
    INT_FIELDS,
    MODES,
    STR_FIELDS,
    SiliconRows,
)

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
    "batch": 0,  # empty: the concurrency per attention-DP rank
    "tp": None,
    "pp": 1,
    "dp": 1,
    "moe_tp": 0,
    "moe_ep": 0,
}
_PHASE_EMPTY: dict[str, int | None] = {**_AGG_EMPTY, "workers": 0}
_CONCURRENCY_RE = re.compile(r"silicon_concurrency\s*=\s*([0-9.eE+]+)")


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
        if vals["batch"] > 0:
            return vals["batch"] * vals["dp"]
        raise ln.error("batch_size", "empty, and no silicon_concurrency=N to read it from")
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
    vals["backend"] = engine_name(vals["backend"])
    vals["mode"] = vals["mode"].lower()
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
    if vals["mode"] == "agg" and vals["batch"] == 0:  # clients per attention-DP rank
        vals["batch"] = -(-vals["concurrency"] // vals["dp"])
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


def engine_name(raw: str) -> str:
    """The serving engine as the model names it (trtllm, vllm, sglang) from the spellings
    benchmark tables use ("TensorRT-LLM", "trt_llm", "dynamo-sglang", "vLLM" ...); any
    other name lower-cased as it is."""
    key = raw.strip().lower().replace("_", "-")
    key = key.removeprefix("dynamo-")
    if key in ("tensorrt-llm", "trt-llm", "trtllm", "tensorrtllm", "tensorrt"):
        return "trtllm"
    return key.replace("-", "_")


def parse_silicon_csv(path: Path, lenient: bool) -> tuple[SiliconRows, list[dict[str, Any]]]:
    """(rows, rows set aside): ``lenient`` sets a row with a problem aside as
    {line, id, reason} and reads on; otherwise the first problem raises."""
    if not path.is_file():
        raise NotFoundError(f"silicon CSV {path} does not exist")
    rejected: list[dict[str, Any]] = []
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
            if all(not (v or "").strip() for v in record.values() if isinstance(v, str)):
                continue  # blank line
            ln = _Line(path, reader.line_num, record, header)
            try:
                vals = _parse_line(ln, model_col, measured, first_line)
            except CodesignError as exc:
                if not lenient:
                    raise
                rejected.append({"line": reader.line_num, "id": ln.text("id"), "reason": str(exc)})
                continue
            first_line[vals["id"]] = reader.line_num
            for name in _ALL_FIELDS:
                columns[name].append(vals[name])
    if not first_line:
        why = f" ({len(rejected)} set aside; first: {rejected[0]['reason']})" if rejected else ""
        raise CodesignError(f"{path}: no data rows{why}")
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
    return SiliconRows(**arrays), rejected


def _parse_line(
    ln: _Line, model_col: str, measured: bool, first_line: dict[str, int]
) -> dict[str, Any]:
    if None in ln.record:
        raise ln.error("(extra)", f"{len(ln.record[None])} more cells than header columns")
    vals = _parse_record(ln, model_col, measured)
    if vals["id"] in first_line:
        raise ln.error("id", f"duplicate id (first on line {first_line[vals['id']]})")
    return vals


def read_silicon(path: str | Path) -> tuple[SiliconRows, list[dict[str, Any]]]:
    """Read leniently: (rows, [{line, id, reason}] of the rows set aside)."""
    return parse_silicon_csv(Path(path), lenient=True)
