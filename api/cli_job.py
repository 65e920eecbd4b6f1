"""``codesign optimize SPEC --db URL``: run a CLI search as a job of the service database
(owner ``cli``), so its candidates, events and Pareto set are served by the REST API and
the SDK like any submitted job. The job is created already running under this process's
name and finished (completed, cancelled, failed) as a worker would finish it."""

from __future__ import annotations

import os
import socket
from typing import Any

from api.db.jobs import create_job, finish_job
from api.db.migrate import open_database
from api.db.models import Job, utcnow
from api.db.sink import DBSink


class DBJob:
    def __init__(self, url: str, spec: Any) -> None:
        self.engine, self.S = open_database(url)
        self.worker = f"cli:{socket.gethostname()}:{os.getpid()}"
        doc = spec.model_dump(mode="json", exclude_defaults=True)
        job, _ = create_job(self.S, doc, "cli", None)
        self.id = job.id
        with self.S() as s:
            row = s.get(Job, job.id)
            assert row is not None
            row.status, row.worker, row.attempts = "running", self.worker, 1
            row.started_at = row.heartbeat_at = utcnow()
            s.commit()
        self.sink = DBSink(self.S, job.id, self.worker)

    def finish(self, status: str, stopped: str | None = None, error: str | None = None) -> None:
        finish_job(self.S, self.id, self.worker, status, error=error, stopped=stopped)
        self.engine.dispose()
