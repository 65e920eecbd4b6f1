"""Jobs in the database: submission (with idempotency keys), listing, cancellation, the
event log, and the runner's claim / heartbeat / finish. Every statement is parameterised
(SQLAlchemy Core/ORM); each function is one short transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.db.codec import spec_hash
from api.db.models import TERMINAL, Job, JobEvent, utcnow
from api.errors import Conflict, Missing, TooMany


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def create_job(
    S: sessionmaker[Session],
    spec: dict[str, Any],
    owner: str,
    idempotency_key: str | None,
    max_active: int | None = None,
) -> tuple[Job, bool]:
    """Queue a job; returns (job, created). The same ``idempotency_key`` and spec returns
    the stored job; the same key with another spec is a conflict. A new job beyond
    ``max_active`` queued or running jobs of ``owner`` is refused (429)."""
    h = spec_hash(spec)
    with S() as s:
        if idempotency_key is not None:
            old = s.scalars(
                select(Job).where(Job.owner == owner, Job.idempotency_key == idempotency_key)
            ).first()
            if old is not None:
                if old.spec_hash != h:
                    raise Conflict(
                        f"Idempotency-Key {idempotency_key!r} was used for job {old.id} with a "
                        "different spec; use a new key for a new job"
                    )
                return old, False
        if max_active is not None:
            q = select(func.count()).where(
                Job.owner == owner, Job.status.in_(("queued", "running"))
            )
            if int(s.scalar(q) or 0) >= max_active:
                raise TooMany(
                    f"{owner} has {max_active} queued or running jobs (the limit); wait for "
                    "one to finish or cancel one"
                )
        job = Job(
            name=str(spec.get("name", "search")),
            owner=owner,
            spec=spec,
            spec_hash=h,
            idempotency_key=idempotency_key,
            status="queued",
            created_at=utcnow(),
        )
        s.add(job)
        s.flush()
        s.add(JobEvent(job_id=job.id, type="status", data={"status": "queued"}))
        s.commit()
        return job, True


def get_job(S: sessionmaker[Session], job_id: int) -> Job:
    with S() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise Missing(f"job {job_id} not found")
        return job


def list_jobs(
    S: sessionmaker[Session], status: str | None, limit: int, after: int | None
) -> tuple[list[Job], int | None]:
    """Newest first; keyset pagination on the id (``after``: the last id of the previous
    page). Returns (jobs, next cursor or None)."""
    q = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    if status is not None:
        q = q.where(Job.status == status)
    if after is not None:
        q = q.where(Job.id < after)
    with S() as s:
        rows = list(s.scalars(q))
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], nxt


def count_by_status(S: sessionmaker[Session]) -> dict[str, int]:
    with S() as s:
        rows = s.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {st: int(n) for st, n in rows}


def running_progress(S: sessionmaker[Session]) -> list[dict[str, Any]]:
    with S() as s:
        return [p for p in s.scalars(select(Job.progress).where(Job.status == "running")) if p]


def request_cancel(S: sessionmaker[Session], job_id: int) -> Job:
    """A queued job is cancelled at once; a running one is flagged (the runner stops
    between batches). A finished job cannot be cancelled."""
    with S() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None:
            raise Missing(f"job {job_id} not found")
        if job.status in TERMINAL:
            raise Conflict(f"job {job_id} is already {job.status}")
        job.cancel_requested = True
        if job.status == "queued":
            job.status, job.finished_at, job.stopped = "cancelled", utcnow(), "cancelled"
            s.add(JobEvent(job_id=job_id, type="cancelled", data={"status": "cancelled"}))
        s.commit()
        return job


def delete_job(S: sessionmaker[Session], job_id: int) -> None:
    from api.db.models import Candidate

    with S() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None:
            raise Missing(f"job {job_id} not found")
        if job.status == "running":
            raise Conflict(f"job {job_id} is running: cancel it first (POST .../cancel)")
        s.execute(delete(Candidate).where(Candidate.job_id == job_id))
        s.execute(delete(JobEvent).where(JobEvent.job_id == job_id))
        s.delete(job)
        s.commit()


# --- the event log ----------------------------------------------------------------------
def add_event(s: Session, job_id: int, type_: str, data: dict[str, Any]) -> None:
    s.add(JobEvent(job_id=job_id, type=type_, data=data, created_at=utcnow()))


def events_after(
    S: sessionmaker[Session], job_id: int, after: int, limit: int = 500
) -> list[JobEvent]:
    q = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    with S() as s:
        return list(s.scalars(q))


# --- the runner's side ------------------------------------------------------------------
def claim_job(S: sessionmaker[Session], worker: str, stale_after_s: float) -> Job | None:
    """Take the oldest queued job, or a running job whose worker stopped heartbeating
    (crashed) — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional update on SQLite
    (one writer at a time). Returns the claimed job with ``attempts`` incremented."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_s)
    claimable = (Job.status == "queued") | ((Job.status == "running") & (Job.heartbeat_at < stale))
    with S() as s:
        pg = s.get_bind().dialect.name == "postgresql"
        q = select(Job.id).where(claimable).order_by(Job.id).limit(1)
        if pg:
            q = q.with_for_update(skip_locked=True)
        job_id = s.scalar(q)
        if job_id is None:
            return None
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, claimable)
            .values(
                status="running",
                worker=worker,
                heartbeat_at=now,
                attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, now),
            )
        )
        if res.rowcount != 1:  # another worker took it first (SQLite)
            s.rollback()
            return None
        job = s.get(Job, job_id)
        assert job is not None
        note = {"status": "running", "worker": worker, "attempt": job.attempts}
        add_event(s, job_id, "status", note)
        s.commit()
        return job


def heartbeat(S: sessionmaker[Session], job_id: int, worker: str) -> tuple[bool, bool]:
    """Refresh the job's heartbeat; returns (still ours, cancel requested)."""
    with S() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
            .values(heartbeat_at=utcnow())
        )
        cancel = s.scalar(select(Job.cancel_requested).where(Job.id == job_id))
        s.commit()
    return res.rowcount == 1, bool(cancel)


def finish_job(
    S: sessionmaker[Session],
    job_id: int,
    worker: str,
    status: str,
    error: str | None = None,
    stopped: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """Mark the job finished (only if this worker still owns it) and log the event."""
    with S() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
            .values(
                status=status,
                error=error,
                stopped=stopped or status,
                finished_at=utcnow(),
                heartbeat_at=utcnow(),
                **({"result": result} if result is not None else {}),
            )
        )
        if res.rowcount != 1:
            s.rollback()
            return False
        data: dict[str, Any] = {"status": status}
        if error:
            data["error"] = error
        if stopped:
            data["stopped"] = stopped
        add_event(s, job_id, status, data)
        s.commit()
        return True


def release_job(S: sessionmaker[Session], job_id: int, worker: str) -> bool:
    """Put a running job back in the queue (its worker is shutting down): the next worker
    resumes it from its stored batches."""
    with S() as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
            .values(status="queued", worker=None, attempts=Job.attempts - 1)
        )
        if res.rowcount != 1:
            s.rollback()
            return False
        add_event(s, job_id, "status", {"status": "queued", "note": "worker shut down; resumes"})
        s.commit()
        return True
