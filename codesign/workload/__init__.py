"""Agent workload traces: one columnar schema, importers, statistics and a generator."""

from codesign.workload.builder import TraceBuilder
from codesign.workload.importers import TraceFormatError, get_importer, importers, load_trace
from codesign.workload.importers.native_jsonl import write_jsonl
from codesign.workload.prefix import ideal_hit_tokens
from codesign.workload.schema import Trace, TraceMeta
from codesign.workload.stats import trace_stats

__all__ = [
    "Trace",
    "TraceBuilder",
    "TraceFormatError",
    "TraceMeta",
    "get_importer",
    "ideal_hit_tokens",
    "importers",
    "load_trace",
    "trace_stats",
    "write_jsonl",
]
