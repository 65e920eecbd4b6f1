"""Values to and from the JSON columns: metrics keep NaN/inf (as strings, since
PostgreSQL's JSON has none), numpy scalars become Python ones, and parameters get a
stable key (the hash of the active parameters) and the exact text the resume check
compares (`search.resume.StoredBatch`)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def plain(v: Any) -> Any:
    """A JSON-ready Python value (numpy scalars unwrapped)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def json_ready(data: Any) -> Any:
    """Nested dicts/lists/tuples/arrays of numpy and Python values as plain JSON values;
    non-finite floats become None (for JSON columns and responses)."""
    if isinstance(data, dict):
        return {str(k): json_ready(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_ready(v) for v in data]
    if isinstance(data, np.ndarray):
        return json_ready(data.tolist())
    if isinstance(data, np.generic):
        data = data.item()
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def encode_float(v: Any) -> float | str | None:
    if v is None:
        return None
    f = float(v)
    if math.isfinite(f):
        return f
    return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")


def decode_float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, str):
        return _NONFINITE[v]
    return float(v)


def encode_metrics(values: dict[str, Any]) -> dict[str, Any]:
    return {k: encode_float(v) for k, v in values.items()}


def decode_metrics(values: dict[str, Any]) -> dict[str, float]:
    return {k: decode_float(v) for k, v in values.items()}


def public_metrics(values: dict[str, Any] | None) -> dict[str, float | None] | None:
    """What the API shows: finite floats, null for the rest."""
    if values is None:
        return None
    out: dict[str, float | None] = {}
    for k, v in values.items():
        f = decode_float(v)
        out[k] = f if math.isfinite(f) else None
    return out


def param_text(v: Any) -> str:
    """A parameter as `FileSink` writes it (the form the resume check compares)."""
    return "" if v is None else str(v)


def _key_text(v: Any) -> str:
    v = plain(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return repr(float(v))  # an integer knob is 3 in params and 3.0 in a batch column
    return str(v)


def params_key(params: dict[str, Any]) -> str:
    """Hash of the active (non-null) parameters, in name order: the same for a batch row
    and for the Pareto point `search.driver` reports for it."""
    active = {k: _key_text(v) for k, v in sorted(params.items()) if v is not None}
    return hashlib.sha256(json.dumps(active, sort_keys=True).encode()).hexdigest()


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
