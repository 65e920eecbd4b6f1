"""Trace importers: one module per format, registered by name (see `base`)."""

# the Parquet importer lives beside the native JSONL writer; importing it registers it
from codesign.workload import parquet as _parquet  # noqa: F401
from codesign.workload.importers import azure, claude_code, mooncake, native_jsonl  # noqa: F401
from codesign.workload.importers.base import (
    TraceFormatError,
    TraceImporter,
    get_importer,
    importers,
    load_trace,
)

__all__ = ["TraceFormatError", "TraceImporter", "get_importer", "importers", "load_trace"]
