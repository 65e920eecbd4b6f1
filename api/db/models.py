"""The service's tables (SQLAlchemy 2 typed models).

Every table is prefixed ``cs_`` and the Alembic version table is
``codesign_alembic_version``, so the service's database can also hold an Optuna storage
(``studies``, ``trials``, ``alembic_version``, ...) without collisions. Times are naive
UTC. Metric values that are not finite are stored as the strings ``"nan"``/``"inf"``/
``"-inf"`` inside JSON (PostgreSQL's JSON has no NaN), see `api.db.codec`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

VERSION_TABLE = "codesign_alembic_version"
JOB_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
TERMINAL = ("completed", "failed", "cancelled")

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so autoincrement works) on SQLite
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class Job(Base):
    __tablename__ = "cs_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    owner: Mapped[str] = mapped_column(String(200), default="local", index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stopped: Mapped[str | None] = mapped_column(String(32), nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    evaluations: Mapped[int] = mapped_column(Integer, default=0)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    pareto_size: Mapped[int] = mapped_column(Integer, default=0)
    hypervolume: Mapped[float] = mapped_column(Float, default=0.0)
    recommended: Mapped[int | None] = mapped_column(BigId, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        UniqueConstraint("owner", "idempotency_key", name="uq_cs_jobs_owner_idem"),
        Index("ix_cs_jobs_status_id", "status", "id"),
    )


class Candidate(Base):
    """One evaluated candidate of a job (every one, not only the Pareto points)."""

    __tablename__ = "cs_candidates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("cs_jobs.id", ondelete="CASCADE"))
    batch: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)  # position in its batch
    phase: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))  # hash of the active parameters
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # every dimension (None: inactive)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)  # analytic fidelity
    metrics_simulated: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    feasible: Mapped[bool] = mapped_column(Boolean)
    ok: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    pareto: Mapped[bool] = mapped_column(Boolean, default=False)
    pareto_rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pareto_simulated: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    hv_contribution: Mapped[float | None] = mapped_column(Float, nullable=True)
    deployment: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        UniqueConstraint("job_id", "batch", "idx", name="uq_cs_candidates_position"),
        Index("ix_cs_candidates_job_pareto", "job_id", "pareto", "pareto_rank"),
        Index("ix_cs_candidates_job_key", "job_id", "key"),
    )


class JobEvent(Base):
    """The job's event log: the server-sent event stream reads it (ids are event ids)."""

    __tablename__ = "cs_job_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("cs_jobs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_cs_job_events_job_id", "job_id", "id"),)


class TraceRecord(Base):
    """An uploaded or synthetic trace, stored losslessly (native Parquet) with its stats."""

    __tablename__ = "cs_traces"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), default="local")
    source_format: Mapped[str] = mapped_column(String(32))
    sessions: Mapped[int] = mapped_column(Integer)
    requests: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # native Parquet
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class HardwareRecord(Base):
    """A user-defined chip or system (the same document as a catalog YAML file)."""

    __tablename__ = "cs_hardware"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # chip | system
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), default="local")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("kind", "name", name="uq_cs_hardware_kind_name"),)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored (keys are 256-bit random tokens)."""

    __tablename__ = "cs_api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(8))  # read | write
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
