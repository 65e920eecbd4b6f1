"""The service's `search.sink.Sink`: each search batch is written in one transaction
(its candidates, the job's progress and the progress/Pareto events), only while this
worker still owns the job; the finished front marks its candidates; `stored_batches`
reads the complete batches back for a resumed run (`search.resume`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.db.codec import encode_metrics, json_ready, param_text, params_key, plain
from api.db.jobs import add_event
from api.db.models import Candidate, Job
from search.resume import StoredBatch
from search.sink import Batch

if TYPE_CHECKING:
    from search.driver import Progress, SearchResult
    from search.spec import JobSpec


class JobLost(RuntimeError):
    """Another worker took the job over (this one was presumed dead): stop writing."""


class DBSink:
    def __init__(self, S: sessionmaker[Session], job_id: int, worker: str) -> None:
        from codesign.evaluate import METRICS

        self.S, self.job_id, self.worker = S, job_id, worker
        self.metric_names = METRICS
        self._last_front: tuple[int, float] | None = None

    def open(self, spec: JobSpec, space_size: int) -> None:
        self.space_size = space_size

    def _own(self, s: Session, **values: Any) -> None:
        res = s.execute(
            update(Job)
            .where(Job.id == self.job_id, Job.worker == self.worker, Job.status == "running")
            .values(**values)
        )
        if res.rowcount != 1:
            s.rollback()
            raise JobLost(f"job {self.job_id} is no longer owned by worker {self.worker}")

    def write_batch(self, batch: Batch, progress: Progress) -> None:
        names = list(batch.columns)
        cols = [batch.columns[c] for c in names]
        feasible, reason = batch.metrics["feasible"], batch.metrics["reason"]
        mcols = {m: batch.metrics[m] for m in self.metric_names}
        rows = []
        for i in range(len(batch)):
            params = {c: plain(col[i]) for c, col in zip(names, cols, strict=True)}
            rows.append(
                {
                    "job_id": self.job_id,
                    "batch": batch.number,
                    "idx": i,
                    "phase": batch.phase,
                    "key": params_key(params),
                    "params": params,
                    "metrics": encode_metrics({m: v[i] for m, v in mcols.items()}),
                    "feasible": bool(feasible[i]),
                    "ok": bool(batch.ok[i]),
                    "reason": str(reason[i]),
                    "pareto": False,
                }
            )
        prog = {k: plain(v) for k, v in asdict(progress).items()}
        with self.S() as s:
            self._own(
                s,
                progress=prog,
                evaluations=progress.evaluations,
                batches=batch.number,
                pareto_size=progress.pareto_size,
                hypervolume=float(progress.hypervolume),
            )
            s.execute(insert(Candidate), rows)
            add_event(s, self.job_id, "progress", {"batch": batch.number, **prog})
            front = (progress.pareto_size, float(progress.hypervolume))
            if front != self._last_front:
                self._last_front = front
                add_event(s, self.job_id, "pareto", {"size": front[0], "hypervolume": front[1]})
            s.commit()

    def close(self, result: SearchResult) -> None:
        from search.report import recommend, summary

        rec = recommend(result)
        with self.S() as s:
            # a resumed job may have marked an interim front before it was released
            s.execute(
                update(Candidate)
                .where(Candidate.job_id == self.job_id, Candidate.pareto.is_(True))
                .values(pareto=False, pareto_rank=None, hv_contribution=None, deployment=None)
            )
            ids: list[int] = []
            for rank, p in enumerate(result.front):
                cid = s.scalar(
                    select(Candidate.id)
                    .where(
                        Candidate.job_id == self.job_id,
                        Candidate.key == params_key(p.params),
                        Candidate.ok.is_(True),
                    )
                    .order_by(Candidate.id)
                    .limit(1)
                )
                if cid is None:
                    raise RuntimeError(f"front point {rank} has no stored candidate")
                ids.append(cid)
                sim = p.metrics_simulated
                s.execute(
                    update(Candidate)
                    .where(Candidate.id == cid)
                    .values(
                        pareto=True,
                        pareto_rank=rank,
                        hv_contribution=float(p.hv_contribution),
                        metrics_simulated=None if sim is None else encode_metrics(sim),
                        pareto_simulated=p.pareto_simulated,
                        deployment=p.deployment.model_dump(mode="json", exclude_defaults=True),
                    )
                )
            info = summary(result)
            info.pop("pareto")
            info["recommended"] = None if rec is None else ids[rec]
            info = json_ready(info)
            self._own(
                s,
                pareto_size=len(ids),
                hypervolume=float(result.hypervolume),
                evaluations=result.evaluations,
                recommended=None if rec is None else ids[rec],
                result=info,
            )
            add_event(
                s,
                self.job_id,
                "pareto",
                {
                    "size": len(ids),
                    "hypervolume": float(result.hypervolume),
                    "final": True,
                    "candidates": ids,
                    "recommended": info["recommended"],
                },
            )
            s.commit()


def stored_batches(S: sessionmaker[Session], job_id: int) -> list[StoredBatch]:
    """The job's stored batches in order, as `search.resume.StoredBatch` (each batch was
    written in one transaction, so every stored batch is complete)."""
    from api.db.codec import decode_float
    from codesign.evaluate import METRICS

    q = (
        select(Candidate.batch, Candidate.params, Candidate.metrics, Candidate.feasible)
        .add_columns(Candidate.reason)
        .where(Candidate.job_id == job_id)
        .order_by(Candidate.batch, Candidate.idx)
    )
    with S() as s:
        rows = s.execute(q).all()
    out: list[StoredBatch] = []
    start = 0
    while start < len(rows):
        b = rows[start][0]
        end = start
        while end < len(rows) and rows[end][0] == b:
            end += 1
        part = rows[start:end]
        start = end
        names = list(part[0][1])
        cols = {c: [param_text(r[1].get(c)) for r in part] for c in names}
        metrics: dict[str, np.ndarray] = {
            m: np.array([decode_float(r[2].get(m)) for r in part], dtype=np.float64)
            for m in METRICS
        }
        metrics["feasible"] = np.array([bool(r[3]) for r in part])
        metrics["reason"] = np.array([r[4] for r in part], dtype=object)
        out.append(StoredBatch(int(b), cols, metrics))
    return out
