"""Resuming an interrupted job from the batches its `FileSink` persisted.

``evaluations.csv`` holds every evaluated candidate (metrics at full precision) and
``progress.jsonl`` one line per *complete* batch (written after the batch's rows and
flushed), so the complete batches are the first ``len(progress.jsonl)`` batch numbers.

A resumed `Search` replays the job from the start with the same seed: each batch the
strategy asks for is answered from the stored results instead of being evaluated (the
candidates are checked against the stored parameters), so the RNG, the ``_seen`` set, the
Pareto archive and the Optuna study (rebuilt by the same ask/tell sequence, so its
sampler state is exactly the uninterrupted one's) are those of the interrupted run; new
batches are then evaluated and appended. The final front equals an uninterrupted run's
with the same seed. (Rebuilding the study with ``study.add_trials`` instead would not
restore the sampler's RNG state, so the continuation would differ.)
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import SpecError


@dataclass
class StoredBatch:
    number: int
    columns: dict[str, list[str]]  # parameter name -> values as written
    metrics: dict[str, np.ndarray]  # METRICS (float), feasible, reason

    def __len__(self) -> int:
        return len(self.metrics["feasible"])

    def take(self, pts: dict[str, np.ndarray], space: Any) -> dict[str, np.ndarray]:
        """The stored results, after checking that ``pts`` are the stored candidates."""
        n = len(pts["mode"])
        if n != len(self):
            raise SpecError(
                f"resume: batch {self.number} has {len(self)} stored candidates, the job asks "
                f"for {n}; the out folder was written by a different spec or seed"
            )
        for name, stored in self.columns.items():
            if name not in space.by_name:
                continue
            if space.by_name[name].continuous:
                v = pts[name]
                now = ["" if np.isnan(x) else str(float(x)) for x in v]
            else:
                now = ["" if x is None else str(x) for x in space.values(pts, name)]
            if now != stored:
                raise SpecError(
                    f"resume: batch {self.number} ({name}) differs from the stored candidates; "
                    "the out folder was written by a different spec or seed"
                )
        return {k: v.copy() for k, v in self.metrics.items()}


def read_batches(out: str | Path) -> tuple[list[StoredBatch], list[list[str]], list[str]]:
    """The complete stored batches of ``out``, plus the CSV rows (header first) and progress lines
    that belong to them (for rewriting the files without a torn last batch)."""
    from codesign.evaluate import METRICS

    out = Path(out)
    ev, pr = out / "evaluations.csv", out / "progress.jsonl"
    if not ev.is_file() or not pr.is_file():
        return [], [], []
    progress = [ln for ln in pr.read_text().splitlines() if ln.strip()]
    complete = []
    for ln in progress:
        try:
            json.loads(ln)
        except json.JSONDecodeError:
            break
        complete.append(ln)
    n_batches = len(complete)
    with ev.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        rows = [r for r in reader if r and r[0].isdigit() and int(r[0]) <= n_batches]
    if header is None or not rows:
        return [], [], []
    pcols = header[2 : header.index(METRICS[0])]
    col = {c: i for i, c in enumerate(header)}
    batches: list[StoredBatch] = []
    start = 0
    for b in range(1, n_batches + 1):
        end = start
        while end < len(rows) and int(rows[end][0]) == b:
            end += 1
        part = rows[start:end]
        start = end
        metrics = {m: np.array([float(r[col[m]]) for r in part], dtype=np.float64) for m in METRICS}
        metrics["feasible"] = np.array([r[col["feasible"]] == "True" for r in part])
        metrics["reason"] = np.array([r[col["reason"]] for r in part], dtype=object)
        batches.append(StoredBatch(b, {c: [r[col[c]] for r in part] for c in pcols}, metrics))
    return batches, [header, *rows], complete
