"""Traces and custom hardware in the database.

A trace is stored losslessly as native Parquet bytes with its statistics; a job refers to
it as ``workload.trace: trace:ID`` and the runner materialises it into a temporary file.
Custom chips and systems are catalog documents; `sync_catalog` registers them into the
process's hardware catalog (the API at start and after each change, the runner before each
job), replacing stale registrations."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db.codec import json_ready
from api.db.models import HardwareRecord, TraceRecord
from api.errors import Missing

TRACE_REF = "trace:"


def trace_id_of(ref: Any) -> int | None:
    """The id in ``trace:ID`` when it can name a stored trace (ASCII digits, at most 18 of
    them, >= 1); None for anything else."""
    if not isinstance(ref, str) or not ref.strip().startswith(TRACE_REF):
        return None
    tail = ref.strip()[len(TRACE_REF) :]
    if not (tail.isascii() and tail.isdigit() and len(tail) <= 18) or int(tail) < 1:
        return None
    return int(tail)


def store_trace(S: sessionmaker[Session], trace: Any, name: str, owner: str) -> TraceRecord:
    """Compute the trace's statistics and store it (native Parquet)."""
    from codesign.workload import trace_stats
    from codesign.workload.parquet import write_parquet

    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(trace, Path(tmp) / "trace.parquet")
        data = path.read_bytes()
    rec = TraceRecord(
        name=name[:200],
        owner=owner,
        source_format=trace.meta.source_format,
        sessions=int(trace.n_sessions),
        requests=int(trace.n_requests),
        bytes=len(data),
        stats=json_ready(trace_stats(trace)),
        data=data,
    )
    with S() as s:
        s.add(rec)
        s.commit()
        return rec


def get_trace(S: sessionmaker[Session], trace_id: int) -> TraceRecord:
    with S() as s:
        rec = s.get(TraceRecord, trace_id)
        if rec is None:
            raise Missing(f"trace {trace_id} not found")
        return rec


def materialise(S: sessionmaker[Session], trace_id: int, folder: Path) -> Path:
    """Write the stored trace to ``folder/trace-ID.parquet``; returns the path."""
    rec = get_trace(S, trace_id)
    path = folder / f"trace-{trace_id}.parquet"
    path.write_bytes(rec.data)
    return path


def load_stored(S: sessionmaker[Session], trace_id: int) -> Any:
    """The stored trace as a `codesign.workload.Trace` (404 `Missing` if there is none)."""
    from codesign.workload import load_trace

    with tempfile.TemporaryDirectory(prefix="codesign-trace-") as tmp:
        return load_trace(materialise(S, trace_id, Path(tmp)), "parquet")


# --- custom hardware ------------------------------------------------------------------
_registered: dict[str, set[str]] = {"chip": set(), "system": set()}


def custom_hardware(S: sessionmaker[Session]) -> list[HardwareRecord]:
    with S() as s:
        return list(s.scalars(select(HardwareRecord).order_by(HardwareRecord.id)))


def sync_catalog(S: sessionmaker[Session]) -> None:
    """Make the process catalog hold exactly the built-in entries plus the stored custom
    ones (chips before systems, since a system names its chip)."""
    from hwmodels.catalog import default_catalog

    cat = default_catalog()
    for kind in ("system", "chip"):
        for name in _registered[kind]:
            cat.remove(kind, name)
        _registered[kind] = set()
    recs = custom_hardware(S)
    for kind in ("chip", "system"):
        for r in recs:
            if r.kind != kind:
                continue
            validate_hardware(kind, r.spec, register=True)
            _registered[kind].add(r.name)


def validate_hardware(kind: str, spec: dict[str, Any], register: bool = False) -> Any:
    """Validate a chip/system document exactly as the YAML catalog does; optionally add it
    to the process catalog. Returns the Chip or System."""
    from hwmodels.catalog import Chip, System, default_catalog

    cat = default_catalog()
    where = f"hardware {kind}"
    obj = cat._validate(Chip if kind == "chip" else System, spec, where)
    if register:
        if kind == "chip":
            cat.add_chip(obj, origin="custom")
        else:
            cat.add_system(obj, origin="custom")
    return obj
