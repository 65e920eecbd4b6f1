"""Azure LLM inference traces (Splitwise, 2023): ``TIMESTAMP,ContextTokens,GeneratedTokens``.

Arrival times and lengths only: no sessions, no prefix data. The file becomes one session
holding one stream; times are seconds after the first request.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import ClassVar

import numpy as np

from codesign.workload.builder import TraceBuilder
from codesign.workload.importers.base import (
    Progress,
    TraceFormatError,
    bad_record,
    open_text,
    read_head,
    register,
)
from codesign.workload.schema import PRIMARY_KIND, Trace, TraceMeta

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


@register
class AzureImporter:
    name: ClassVar[str] = "azure"
    description: ClassVar[str] = "Azure LLM inference CSV: timestamps and token counts only"
    suffixes: ClassVar[tuple[str, ...]] = (".csv",)

    def sniff(self, path: Path) -> bool:
        return read_head(path, 256).lstrip().startswith("TIMESTAMP,ContextTokens")

    def load(self, paths: list[Path], progress: Progress | None = None) -> Trace:
        meta = TraceMeta(
            name=paths[0].name if len(paths) == 1 else paths[0].parent.name,
            source_format=self.name,
        )
        b = TraceBuilder(meta)
        for i, path in enumerate(paths):
            self._load_file(b, path)
            if progress is not None:
                progress(i + 1, len(paths))
        return b.build()

    def _load_file(self, b: TraceBuilder, path: Path) -> None:
        stamps: list[np.datetime64] = []
        inp: list[int] = []
        out: list[int] = []
        try:
            with open_text(path) as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None or tuple(h.strip() for h in header[:3]) != COLUMNS:
                    raise bad_record(path, "line 1", "header", f"expected {','.join(COLUMNS)}")
                for row in reader:
                    where = f"line {reader.line_num}"
                    if not row:
                        continue
                    if len(row) < 3:
                        raise bad_record(path, where, COLUMNS[len(row)], "missing")
                    try:
                        stamps.append(np.datetime64(row[0].strip().replace(" ", "T"), "ns"))
                    except ValueError:
                        raise bad_record(path, where, COLUMNS[0], f"bad time {row[0]!r}") from None
                    for col, val, dest in ((1, row[1], inp), (2, row[2], out)):
                        try:
                            n = int(val)
                        except ValueError:
                            n = -1
                        if n < 0:
                            raise bad_record(path, where, COLUMNS[col], f"bad count {val!r}")
                        dest.append(n)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise TraceFormatError(f"{path}: cannot read: {exc}") from exc
        if not stamps:
            raise TraceFormatError(f"{path}: no requests")
        t = np.array(stamps, dtype="datetime64[ns]")
        arrival_s = (t - t.min()).astype(np.int64) / 1e9
        s = b.add_session(path.name.split(".")[0], 0.0)
        a = b.add_agent(s, -1, PRIMARY_KIND, "stream", 0.0)
        b.add_requests(
            a,
            arrival_s=arrival_s,
            input_tokens=inp,
            output_tokens=out,
            gap_kind=0,
            compaction=False,
        )
