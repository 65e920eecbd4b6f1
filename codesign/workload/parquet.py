"""The native trace format as Parquet (``*.parquet``): same schema version as the JSONL form.

One row per request with the `Trace` request columns in their own dtypes and the block
hashes as a ``list<int64>`` column; the session and agent tables (small) and `TraceMeta`
are stored as JSON in the file's key-value metadata under ``codesign.*`` keys, with
``codesign.format = "codesign-trace"`` and ``codesign.version = FORMAT_VERSION``. Reading
a written trace gives identical arrays (floats are stored as float64, NaN included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from codesign.workload.importers.base import Progress, TraceFormatError, register
from codesign.workload.schema import (
    AGENT_COLUMNS,
    FORMAT_VERSION,
    REQUEST_COLUMNS,
    SESSION_COLUMNS,
    Trace,
    TraceMeta,
)

MAGIC = "codesign-trace"


def _table_json(trace: Trace, names: tuple[str, ...]) -> str:
    cols = {
        n: {"dtype": str(getattr(trace, n).dtype), "values": getattr(trace, n).tolist()}
        for n in names
    }
    return json.dumps(cols)


def _from_json(text: str) -> dict[str, np.ndarray]:
    cols = json.loads(text)
    return {n: np.array(c["values"], dtype=c["dtype"]) for n, c in cols.items()}


def write_parquet(trace: Trace, path: Path | str) -> Path:
    """Write ``trace`` as native Parquet (zstd-compressed)."""
    path = Path(path)
    arrays = {n: pa.array(getattr(trace, n)) for n in REQUEST_COLUMNS}
    if trace.hash_ids.size < 2**31:
        offsets = pa.array(trace.hash_offsets.astype(np.int32))
        hashes = pa.ListArray.from_arrays(offsets, pa.array(trace.hash_ids, type=pa.int64()))
    else:
        offsets = pa.array(trace.hash_offsets)
        hashes = pa.LargeListArray.from_arrays(offsets, pa.array(trace.hash_ids, type=pa.int64()))
    arrays["hash_ids"] = hashes
    meta = {
        b"codesign.format": MAGIC.encode(),
        b"codesign.version": str(FORMAT_VERSION).encode(),
        b"codesign.meta": trace.meta.model_dump_json().encode(),
        b"codesign.sessions": _table_json(trace, SESSION_COLUMNS).encode(),
        b"codesign.agents": _table_json(trace, AGENT_COLUMNS).encode(),
    }
    table = pa.table(arrays).replace_schema_metadata(meta)
    pq.write_table(table, path, compression="zstd")
    return path


def read_parquet(path: Path | str) -> Trace:
    """Read a native Parquet trace; TraceFormatError names the file and what is wrong."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise TraceFormatError(f"{path}: not a readable Parquet file: {exc}") from exc
    md: dict[bytes, bytes] = table.schema.metadata or {}
    if md.get(b"codesign.format") != MAGIC.encode():
        raise TraceFormatError(f"{path}: field 'codesign.format': not a {MAGIC} Parquet file")
    version = md.get(b"codesign.version", b"?").decode()
    if version != str(FORMAT_VERSION):
        raise TraceFormatError(
            f"{path}: field 'codesign.version': {version!r} unsupported "
            f"(this version reads {FORMAT_VERSION})"
        )
    missing = [c for c in (*REQUEST_COLUMNS, "hash_ids") if c not in table.column_names]
    if missing:
        raise TraceFormatError(f"{path}: missing columns: {', '.join(missing)}")
    cols: dict[str, Any] = {}
    for n in REQUEST_COLUMNS:
        cols[n] = table.column(n).to_numpy()
    hashes = table.column("hash_ids").combine_chunks()
    if table.num_rows:
        cols["hash_offsets"] = hashes.offsets.to_numpy().astype(np.int64)
        cols["hash_ids"] = hashes.values.to_numpy().astype(np.int64)
        first = cols["hash_offsets"][0]
        cols["hash_offsets"] = cols["hash_offsets"] - first
        cols["hash_ids"] = cols["hash_ids"][first : first + cols["hash_offsets"][-1]]
    else:
        cols["hash_offsets"] = np.zeros(1, dtype=np.int64)
        cols["hash_ids"] = np.zeros(0, dtype=np.int64)
    try:
        cols.update(_from_json(md[b"codesign.sessions"].decode()))
        cols.update(_from_json(md[b"codesign.agents"].decode()))
        meta = TraceMeta.model_validate_json(md[b"codesign.meta"])
    except (KeyError, ValueError, TypeError) as exc:
        raise TraceFormatError(f"{path}: field 'codesign.*' metadata: {exc}") from exc
    cols["session_ids"] = cols["session_ids"].astype(object)
    cols["agent_kind"] = cols["agent_kind"].astype(object)
    cols["agent_name"] = cols["agent_name"].astype(object)
    return Trace(meta=meta, **cols).validate()


@register
class NativeParquetImporter:
    name: ClassVar[str] = "parquet"
    description: ClassVar[str] = "codesign native trace, Parquet (lossless, versioned)"
    suffixes: ClassVar[tuple[str, ...]] = (".parquet",)

    def sniff(self, path: Path) -> bool:
        try:
            with open(path, "rb") as fh:
                return fh.read(4) == b"PAR1"
        except OSError:
            return False

    def load(self, paths: list[Path], progress: Progress | None = None) -> Trace:
        if len(paths) != 1:
            raise TraceFormatError("the native Parquet format is one file per trace; give a file")
        trace = read_parquet(paths[0])
        if progress is not None:
            progress(1, 1)
        return trace
