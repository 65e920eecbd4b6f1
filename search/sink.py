"""Where a search persists its batches: a small protocol, a file sink (CLI runs) and an
in-memory sink (tests, benchmarks). The service's database sink implements the same three
methods and writes each batch in one transaction."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from search.driver import Progress, SearchResult
    from search.spec import JobSpec


@dataclass
class Batch:
    """One evaluated batch: parameter columns (None where inactive), metrics and status."""

    number: int
    phase: str  # screen | exhaustive | refine | random | qmc | tpe | nsga2 | nsga3
    columns: dict[str, np.ndarray]  # parameter name -> values
    metrics: dict[str, np.ndarray]  # METRICS + feasible + reason
    ok: np.ndarray  # feasible and within every constraint

    def __len__(self) -> int:
        return len(self.ok)


class Sink(Protocol):
    def open(self, spec: JobSpec, space_size: int) -> None: ...
    def write_batch(self, batch: Batch, progress: Progress) -> None: ...
    def close(self, result: SearchResult) -> None: ...


class MemorySink:
    """Keeps every batch (for tests and small runs)."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.progress: list[Progress] = []
        self.closed = False

    def open(self, spec: JobSpec, space_size: int) -> None:
        self.space_size = space_size

    def write_batch(self, batch: Batch, progress: Progress) -> None:
        self.batches.append(batch)
        self.progress.append(progress)

    def close(self, result: SearchResult) -> None:
        self.closed = True


class FileSink:
    """``evaluations.csv`` (one row per candidate: parameters, metrics at full precision,
    feasible, ok, reason) and ``progress.jsonl`` (one line per batch, written after the
    batch's rows; both flushed per batch) in ``out``.

    ``resume=True``: keep the complete batches already in ``out`` (``stored``, to pass to
    ``Search(resume=...)``; see `search.resume`), drop a torn last batch, and append."""

    def __init__(
        self, out: str | Path, metrics: tuple[str, ...] | None = None, resume: bool = False
    ) -> None:
        from codesign.evaluate import METRICS
        from search.resume import read_batches

        self.out = Path(out)
        self.metric_names = metrics or METRICS
        self._csv: Any = None
        self._writer: Any = None
        self.stored, self._rows, self._lines = read_batches(out) if resume else ([], [], [])

    def open(self, spec: JobSpec, space_size: int) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "job.yaml").write_text(spec.to_yaml())
        self._csv = (self.out / "evaluations.csv").open("w", newline="")
        self._writer = None
        self._progress = (self.out / "progress.jsonl").open("w")
        if self._rows:  # resume: rewrite the complete batches, then append
            self._param_cols = self._rows[0][2 : self._rows[0].index(self.metric_names[0])]
            self._writer = csv.writer(self._csv)
            self._writer.writerows(self._rows)
            self._progress.writelines(ln + "\n" for ln in self._lines)
            self._rows = []

    def write_batch(self, batch: Batch, progress: Progress) -> None:
        if self._writer is None:
            self._param_cols = list(batch.columns)
            cols = ["batch", "phase", *self._param_cols, *self.metric_names]
            cols += ["feasible", "ok", "reason"]
            self._writer = csv.writer(self._csv)
            self._writer.writerow(cols)
        pcols = [batch.columns[c] for c in self._param_cols]
        mcols = [
            np.char.mod("%.17g", batch.metrics[m].astype(np.float64)) for m in self.metric_names
        ]
        reason = batch.metrics["reason"]
        feasible = batch.metrics["feasible"]
        for i in range(len(batch)):
            row = [batch.number, batch.phase, *("" if c[i] is None else c[i] for c in pcols)]
            row += [c[i] for c in mcols]
            row += [bool(feasible[i]), bool(batch.ok[i]), reason[i]]
            self._writer.writerow(row)
        self._csv.flush()
        self._progress.write(json.dumps(asdict(progress)) + "\n")
        self._progress.flush()

    def close(self, result: SearchResult) -> None:
        if self._csv is not None:
            self._csv.close()
            self._progress.close()


class TeeSink:
    """Writes every batch to several sinks (e.g. files and the service database)."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    def open(self, spec: JobSpec, space_size: int) -> None:
        for s in self.sinks:
            s.open(spec, space_size)

    def write_batch(self, batch: Batch, progress: Progress) -> None:
        for s in self.sinks:
            s.write_batch(batch, progress)

    def close(self, result: SearchResult) -> None:
        for s in self.sinks:
            s.close(result)
