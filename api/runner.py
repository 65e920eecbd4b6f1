"""The job runner: a worker process claims queued jobs from the database and runs them.

``Runner.run_forever()`` polls for work (`api.db.jobs.claim_job`: ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL), runs one job at a time with a `DBSink`, heartbeats from a
thread, and stops the search between batches when the job is cancelled. A job whose
worker died (no heartbeat for ``stale_after_s``) is claimed again and resumed from its
stored batches: the search replays them without re-evaluating (same seed, same front as
an uninterrupted run) and appends the rest. After ``max_attempts`` claims the job fails
with the reason. Several workers (processes) run jobs concurrently."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.db.jobs import claim_job, finish_job, heartbeat, release_job
from api.db.models import Job
from api.db.sink import DBSink, JobLost, stored_batches
from api.db.traces import materialise, sync_catalog, trace_id_of
from codesign.errors import CodesignError

log = logging.getLogger("codesign.runner")


@dataclass
class RunnerConfig:
    poll_s: float = 0.5
    heartbeat_s: float = 2.0
    stale_after_s: float = 30.0
    max_attempts: int = 3
    ray_address: str | None = None  # for jobs with strategy.executor: ray


class _Beat(threading.Thread):
    """Heartbeats every ``every_s`` and mirrors the job's cancel flag."""

    def __init__(self, S: sessionmaker[Session], job_id: int, worker: str, every_s: float):
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.S, self.job_id, self.worker, self.every_s = S, job_id, worker, every_s
        self.cancel = threading.Event()
        self.lost = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                ours, cancel = heartbeat(self.S, self.job_id, self.worker)
            except Exception:  # a transient database error: try again next beat
                log.exception("heartbeat of job %s failed", self.job_id)
                continue
            if not ours:
                self.lost.set()
                self.cancel.set()
            elif cancel:
                self.cancel.set()


class Runner:
    def __init__(self, S: sessionmaker[Session], config: RunnerConfig | None = None) -> None:
        self.S = S
        self.config = config or RunnerConfig()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._release = threading.Event()

    def stop(self, release: bool = True) -> None:
        """Stop polling; with ``release`` also stop the running job between batches and
        put it back in the queue (another worker resumes it from its stored batches)."""
        self._stop.set()
        if release:
            self._release.set()

    def run_forever(self) -> None:
        log.info("worker %s polling for jobs", self.name)
        while not self._stop.is_set():
            try:
                worked = self.run_one()
            except Exception:
                log.exception("worker loop error")
                worked = False
            if not worked:
                self._stop.wait(self.config.poll_s)

    def run_one(self) -> bool:
        """Claim and run one job; False when there was none."""
        job = claim_job(self.S, self.name, self.config.stale_after_s)
        if job is None:
            return False
        if job.attempts > self.config.max_attempts:
            finish_job(
                self.S,
                job.id,
                self.name,
                "failed",
                error=f"the job's worker stopped {job.attempts - 1} times (crash, kill or "
                "out of memory) before it finished; resubmit it, perhaps with a smaller budget",
            )
            return True
        self._run(job)
        return True

    def _run(self, job: Job) -> None:
        beat = _Beat(self.S, job.id, self.name, self.config.heartbeat_s)
        beat.start()
        try:
            with tempfile.TemporaryDirectory(prefix=f"codesign-job{job.id}-") as tmp:
                result = self._search(job, Path(tmp), beat)
            if beat.lost.is_set():
                log.warning("job %s was taken over by another worker", job.id)
                return
            if self._release.is_set() and not beat.cancel.is_set():
                release_job(self.S, job.id, self.name)
                return
            status = "cancelled" if result.stopped == "cancelled" else "completed"
            finish_job(self.S, job.id, self.name, status, stopped=result.stopped)
        except JobLost:
            log.warning("job %s was taken over by another worker", job.id)
        except CodesignError as exc:
            finish_job(self.S, job.id, self.name, "failed", error=str(exc))
        except Exception as exc:
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())
            msg = f"internal error: {type(exc).__name__}: {exc}"
            finish_job(self.S, job.id, self.name, "failed", error=msg)
        finally:
            beat.done.set()
            beat.join(timeout=5)

    def _search(self, job: Job, tmp: Path, beat: _Beat):  # -> SearchResult
        from search.driver import Search
        from search.spec import JobSpec

        sync_catalog(self.S)
        spec = JobSpec.from_data(job.spec, where=f"job {job.id}")
        tid = trace_id_of(spec.workload.trace or "")
        if tid is not None:
            path = materialise(self.S, tid, tmp)
            wl = spec.workload.model_copy(update={"trace": str(path), "format": "parquet"})
            spec = spec.model_copy(update={"workload": wl})
        st = spec.strategy
        if st.executor == "ray" and st.ray_address is None and self.config.ray_address:
            strategy = st.model_copy(update={"ray_address": self.config.ray_address})
            spec = spec.model_copy(update={"strategy": strategy})
        resume = stored_batches(self.S, job.id)
        if resume:
            log.info("job %s: resuming after %d stored batches", job.id, len(resume))
        sink = DBSink(self.S, job.id, self.name)
        stop = self._release

        def cancel() -> bool:
            return beat.cancel.is_set() or stop.is_set()

        search = Search(spec, sink=sink, cancel=cancel, resume=resume)
        return search.run()


def wait_for(cond, timeout_s: float, every_s: float = 0.05) -> bool:
    """Poll ``cond()`` until true or ``timeout_s`` passes (for tests and start-up)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(every_s)
    return bool(cond())
