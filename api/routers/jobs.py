"""Jobs: submit (idempotent), list, show, cancel, delete, and the server-sent event stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.db import jobs as store
from api.db.models import TERMINAL, Job
from api.deps import AppState, read_access, state, write_access
from api.errors import Invalid, Missing
from api.schemas import Id, Page, after_query, errors, iso

router = APIRouter(tags=["jobs"])
Status = Literal["queued", "running", "completed", "failed", "cancelled"]


def job_out(job: Job, spec: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "owner": job.owner,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "heartbeat_at": iso(job.heartbeat_at),
        "attempts": job.attempts,
        "worker": job.worker,
        "cancel_requested": job.cancel_requested,
        "error": job.error,
        "stopped": job.stopped,
        "progress": job.progress,
        "evaluations": job.evaluations,
        "pareto_size": job.pareto_size,
        "hypervolume": job.hypervolume,
        "recommended": job.recommended,
    }
    if spec:
        out["spec"] = job.spec
        out["result"] = job.result
    return out


def validate_spec(st: AppState, doc: dict[str, Any]) -> dict[str, Any]:
    """The job spec as the search will run it (normalised JSON), or a 422 naming the field:
    pydantic validation, service limits, trace references, and the search space itself
    (model, systems, parallelism) so that a bad job fails now, not in the worker."""
    from api.routers.catalog import check_model
    from api.routers.traces import check_synth_size
    from search.space import Space, model_is_moe
    from search.spec import JobSpec

    spec = JobSpec.from_data(doc)
    check_model(spec.model, ("body", "model"))
    if spec.subagent_model is not None:
        check_model(spec.subagent_model, ("body", "subagent_model"))
    if spec.workload.synth is not None:
        w = spec.workload.synth
        check_synth_size(w.preset, w.sessions, w.seed, ("body", "workload", "synth", "sessions"))
    if spec.strategy.budget > st.settings.max_budget:
        raise Invalid(
            f"strategy.budget {spec.strategy.budget:,} is over this server's limit of "
            f"{st.settings.max_budget:,} evaluations",
            ("body", "strategy", "budget"),
        )
    if spec.workload.trace is not None:
        from api.routers.traces import trace_ref

        trace_ref(st.S, spec.workload.trace)
    Space(spec, model_is_moe(spec))  # unknown model / system, impossible parallelism
    return spec.model_dump(mode="json", exclude_defaults=True)


@router.post(
    "/jobs",
    status_code=202,
    responses=errors(401, 403, 409, 413, 422, 429),
    summary="Submit a search job",
)
def submit_job(
    response: Response,
    spec: dict[str, Any] = Body(..., description="A job spec (see search/spec.py)."),
    idempotency_key: str | None = Header(None, max_length=200),
    st: AppState = Depends(state),
    who: Principal = Depends(write_access),
) -> dict[str, Any]:
    """Queue a job (202 + Location). With ``Idempotency-Key`` a replay of the same spec
    returns the same job (200); the same key with another spec is 409."""
    doc = validate_spec(st, spec)
    limit = st.settings.max_jobs_per_key
    job, created = store.create_job(st.S, doc, who.owner, idempotency_key, limit)
    response.status_code = 202 if created else 200
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_out(job)


@router.get("/jobs", response_model=Page, responses=errors(401))
def list_jobs(
    status: Status | None = None,
    limit: int = Query(50, ge=1, le=1000),
    after: int | None = after_query(),
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> dict[str, Any]:
    """Jobs, newest first (keyset pagination: pass ``next`` as ``after``)."""
    rows, nxt = store.list_jobs(st.S, status, limit, after)
    return {"items": [job_out(j, spec=False) for j in rows], "next": nxt}


@router.get("/jobs/{job_id}", responses=errors(401, 404))
def get_job(
    job_id: Id, st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> dict[str, Any]:
    """Status, progress, hypervolume, timings, the spec and (when finished) the summary."""
    return job_out(store.get_job(st.S, job_id))


@router.post("/jobs/{job_id}/cancel", status_code=202, responses=errors(401, 403, 404, 409))
def cancel_job(
    job_id: Id, st: AppState = Depends(state), _: Principal = Depends(write_access)
) -> dict[str, Any]:
    """Cancel: a queued job at once, a running one between batches."""
    return job_out(store.request_cancel(st.S, job_id))


@router.delete("/jobs/{job_id}", status_code=204, responses=errors(401, 403, 404, 409))
def delete_job(
    job_id: Id, st: AppState = Depends(state), _: Principal = Depends(write_access)
) -> Response:
    """Delete a job with its candidates and events (a running job: cancel it first)."""
    store.delete_job(st.S, job_id)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/events",
    responses={**errors(401, 404), 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
async def job_events(
    job_id: Id,
    request: Request,
    after: int | None = after_query("resume after this event id"),
    last_event_id: str | None = Header(None),
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> StreamingResponse:
    """Server-sent events: ``status``, ``progress``, ``pareto``, then one of ``completed``,
    ``failed``, ``cancelled`` (the stream ends). Resumable with ``Last-Event-ID``."""
    await run_in_threadpool(store.get_job, st.S, job_id)  # 404 before streaming
    start = after or 0
    if last_event_id and last_event_id.strip().isdigit():
        start = max(start, int(last_event_id.strip()))
    return StreamingResponse(
        _stream(st, job_id, start, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(st: AppState, job_id: Id, last: int, request: Request) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    idle = 0.0
    while True:
        evs = await run_in_threadpool(store.events_after, st.S, job_id, last)
        for ev in evs:
            last = ev.id
            data = json.dumps({"job_id": job_id, **ev.data})
            yield f"id: {ev.id}\nevent: {ev.type}\ndata: {data}\n\n"
            if ev.type in TERMINAL:
                return
        if evs:
            idle = 0.0
            continue
        if await request.is_disconnected():
            return
        try:
            job = await run_in_threadpool(store.get_job, st.S, job_id)
        except Missing:
            return  # deleted while streaming
        if job.status in TERMINAL:  # terminal event already sent before `last`
            more = await run_in_threadpool(store.events_after, st.S, job_id, last)
            if not more:
                return
            continue
        await asyncio.sleep(st.settings.sse_poll_s)
        idle += st.settings.sse_poll_s
        if idle >= st.settings.sse_keepalive_s:
            idle = 0.0
            yield ": keep-alive\n\n"
