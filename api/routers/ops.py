"""Operations: the health check (no auth) and Prometheus metrics."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from api.auth import Principal
from api.db.jobs import count_by_status, running_progress
from api.db.models import JOB_STATUSES, Job, utcnow
from api.deps import AppState, read_access, state
from api.schemas import errors
from codesign import __version__

log = logging.getLogger("codesign.api")

router = APIRouter(tags=["operations"])

# a worker counts as alive when one of its running jobs heartbeated this recently
ALIVE_WINDOW_S = 30.0
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


class Health(BaseModel):
    status: str = "ok"
    version: str
    database: str


@router.get("/healthz", response_model=Health, responses=errors(503))
def healthz(st: AppState = Depends(state)) -> Any:
    """Liveness and database reachability (no authentication). Runs ``SELECT 1`` on the
    database; 503 with the reason when it cannot be reached. ``database`` is ``sqlite``
    or ``postgresql``."""
    try:
        with st.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        log.warning("health check: database unreachable: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": f"database unreachable ({type(exc).__name__})"},
        )
    return Health(version=__version__, database=st.engine.dialect.name)


def _workers_alive(st: AppState) -> int:
    since = utcnow() - timedelta(seconds=ALIVE_WINDOW_S)
    q = select(func.count(func.distinct(Job.worker))).where(
        Job.status == "running", Job.worker.is_not(None), Job.heartbeat_at >= since
    )
    with st.S() as s:
        return int(s.scalar(q) or 0)


def _evaluations_per_second(progress: list[dict[str, Any]]) -> float:
    total = 0.0
    for p in progress:
        try:
            evals, elapsed = float(p.get("evaluations") or 0), float(p.get("elapsed_s") or 0)
        except (TypeError, ValueError):
            continue
        if elapsed > 0 and math.isfinite(evals / elapsed):
            total += evals / elapsed
    return total


def _num(v: float) -> str:
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def render_metrics(st: AppState) -> str:
    """The Prometheus text exposition (format 0.0.4)."""
    counts = count_by_status(st.S)
    queued = counts.get("queued", 0)
    eps = _evaluations_per_second(running_progress(st.S))
    alive = _workers_alive(st)
    lines = [
        "# HELP codesign_jobs Jobs in the database by status.",
        "# TYPE codesign_jobs gauge",
        *(f'codesign_jobs{{status="{s}"}} {counts.get(s, 0)}' for s in JOB_STATUSES),
        "# HELP codesign_queue_depth Jobs waiting for a worker (status queued).",
        "# TYPE codesign_queue_depth gauge",
        f"codesign_queue_depth {queued}",
        "# HELP codesign_evaluations_per_second Candidate evaluations per second, summed over "
        "running jobs (each job's evaluations / elapsed seconds).",
        "# TYPE codesign_evaluations_per_second gauge",
        f"codesign_evaluations_per_second {_num(eps)}",
        "# HELP codesign_workers_alive Distinct workers running a job that heartbeated in the "
        f"last {ALIVE_WINDOW_S:g} s (idle workers are not counted).",
        "# TYPE codesign_workers_alive gauge",
        f"codesign_workers_alive {alive}",
    ]
    return "\n".join(lines) + "\n"


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {PROMETHEUS_TEXT: {}}}, **errors(401)},
)
def metrics(st: AppState = Depends(state), _: Principal = Depends(read_access)) -> Any:
    """Prometheus metrics (text exposition format 0.0.4): ``codesign_jobs{status=...}``
    (every status, 0 when none), ``codesign_queue_depth`` (queued jobs),
    ``codesign_evaluations_per_second`` (summed over running jobs) and
    ``codesign_workers_alive`` (distinct workers whose running job heartbeated in the last
    30 s; a worker waiting for work is not counted)."""
    return PlainTextResponse(render_metrics(st), media_type=PROMETHEUS_TEXT)
