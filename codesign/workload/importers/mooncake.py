"""Mooncake (FAST'25) request traces: JSON lines with ms timestamps and 512-token blocks.

``{"timestamp": ms, "input_length", "output_length", "hash_ids": [...]}``; hash ids are
prefix-chained and global across requests. There are no session or agent ids, so the file
becomes one session holding one stream of requests (replayed at its own timestamps).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codesign.workload.builder import TraceBuilder
from codesign.workload.importers.base import (
    Progress,
    TraceFormatError,
    bad_record,
    iter_lines,
    read_head,
    register,
)
from codesign.workload.schema import PRIMARY_KIND, Trace, TraceMeta

MOONCAKE_BLOCK_TOKENS = 512


def _int(rec: dict[str, Any], key: str, path: Path, where: str) -> int:
    val = rec.get(key)
    if val is None:
        raise bad_record(path, where, key, "missing")
    if isinstance(val, bool) or not isinstance(val, int | float) or val < 0:
        raise bad_record(path, where, key, f"expected a non-negative number, got {val!r:.40}")
    return int(val)


@register
class MooncakeImporter:
    name: ClassVar[str] = "mooncake"
    description: ClassVar[str] = "Mooncake JSONL: ms timestamps, global 512-token block hashes"
    suffixes: ClassVar[tuple[str, ...]] = (".jsonl",)

    def sniff(self, path: Path) -> bool:
        head = read_head(path, 1024)
        return '"input_length"' in head and '"timestamp"' in head

    def load(self, paths: list[Path], progress: Progress | None = None) -> Trace:
        meta = TraceMeta(
            name=paths[0].name if len(paths) == 1 else paths[0].parent.name,
            source_format=self.name,
            block_size_tokens=MOONCAKE_BLOCK_TOKENS,
            hash_scope="global",
        )
        # files of one folder are independent streams: keep their hash spaces apart
        b = TraceBuilder(meta, local_hashes=len(paths) > 1)
        for i, path in enumerate(paths):
            self._load_file(b, path)
            if progress is not None:
                progress(i + 1, len(paths))
        return b.build()

    def _load_file(self, b: TraceBuilder, path: Path) -> None:
        ts, inp, out, counts = [], [], [], []
        hashes: list[int] = []
        for lineno, line in iter_lines(path):
            where = f"line {lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceFormatError(f"{path}: {where}: invalid JSON: {exc.msg}") from exc
            if not isinstance(rec, dict):
                raise bad_record(path, where, "(object)", "expected a JSON object")
            ts.append(_int(rec, "timestamp", path, where) / 1000.0)
            inp.append(_int(rec, "input_length", path, where))
            out.append(_int(rec, "output_length", path, where))
            h = rec.get("hash_ids")
            if not isinstance(h, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in h
            ):
                raise bad_record(path, where, "hash_ids", "missing or not a list of integers")
            counts.append(len(h))
            hashes.extend(h)
        if not ts:
            raise TraceFormatError(f"{path}: no requests")
        s = b.add_session(path.name.split(".")[0], 0.0)
        a = b.add_agent(s, -1, PRIMARY_KIND, "stream", 0.0)
        b.add_requests(
            a,
            arrival_s=ts,
            input_tokens=inp,
            output_tokens=out,
            gap_kind=0,
            hash_counts=counts,
            hash_ids=np.array(hashes, dtype=np.int64),
            compaction=False,
        )
