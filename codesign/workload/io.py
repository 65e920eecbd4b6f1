"""Write traces in the native formats, chosen by file name (JSONL, gzipped JSONL, Parquet)."""

from __future__ import annotations

from pathlib import Path

from codesign.errors import SpecError
from codesign.workload.importers.native_jsonl import write_jsonl
from codesign.workload.schema import Trace

NATIVE_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")


def save_trace(trace: Trace, path: Path | str) -> Path:
    """Write ``trace`` to ``path``: ``*.jsonl[.gz]`` native JSONL, ``*.parquet`` Parquet."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return write_jsonl(trace, path)
    if name.endswith(".parquet"):
        from codesign.workload.parquet import write_parquet

        return write_parquet(trace, path)
    raise SpecError(f"{path}: output must end in {', '.join(NATIVE_SUFFIXES)}")
