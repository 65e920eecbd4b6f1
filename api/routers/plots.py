"""The plots of `codesign plot` from stored data: a job's hypervolume over time (from its
progress events, also while it runs), and a stored trace's prefix-hit ratio vs KV
capacity and its overview figure (context per request over a session). PNG (matplotlib)
or interactive HTML (plotly); the Pareto plots are in `api.routers.results`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select

from api.auth import Principal
from api.db.models import JobEvent
from api.db.results import job_brief
from api.db.traces import load_stored
from api.deps import AppState, read_access, state
from api.errors import Invalid, Missing
from api.routers.traces import TraceId
from api.schemas import Id, errors

router = APIRouter(tags=["plots"])
Fmt = Literal["png", "html"]
MEDIA = {"png": "image/png", "html": "text/html; charset=utf-8"}
CONTENT = {200: {"content": {"image/png": {}, "text/html": {}}}}


def render_bytes(fmt: str, png: Callable[[Path], Any], html: Callable[[Path], Any]) -> bytes:
    """The file a plot writer (``png`` or ``html`` by ``fmt``) writes, as bytes."""
    with tempfile.TemporaryDirectory(prefix="codesign-plot-") as tmp:
        path = Path(tmp) / f"plot.{fmt}"
        (png if fmt == "png" else html)(path)
        return path.read_bytes()


def _render(fmt: str, png: Callable[[Path], Any], html: Callable[[Path], Any]) -> Response:
    return Response(render_bytes(fmt, png, html), media_type=MEDIA[fmt])


@router.get(
    "/jobs/{job_id}/hypervolume.{fmt}",
    responses={**errors(401, 404, 422), **CONTENT},
    response_class=Response,
)
def hypervolume_plot(
    job_id: Id, fmt: Fmt, st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> Response:
    """Hypervolume over evaluations, phases shaded (from the job's progress events)."""
    from codesign.plots import hypervolume

    job = job_brief(st.S, job_id)
    q = select(JobEvent.data).where(JobEvent.job_id == job.id, JobEvent.type == "progress")
    with st.S() as s:
        rows = list(s.scalars(q.order_by(JobEvent.id)))
    if not rows:
        raise Missing(f"job {job_id} has no progress yet (status {job.status})")
    rows = hypervolume.progress_rows(rows)
    name = f"job {job_id}"
    return _render(
        fmt,
        lambda p: hypervolume.write_png(rows, p, name),
        lambda p: hypervolume.write_html(rows, p, name),
    )


@router.get(
    "/traces/{trace_id}/cache.{fmt}",
    responses={**errors(401, 404, 422), **CONTENT},
    response_class=Response,
)
def cache_plot(
    trace_id: TraceId,
    fmt: Fmt,
    sessions_per_cache: list[int] = Query(
        [], description="N sessions sharing a cache (repeat; default 1, 8, 64)"
    ),
    tier: Literal["main", "small"] | None = None,
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> Response:
    """Prefix-cache hit ratio vs KV capacity of a stored trace, one curve per N."""
    from codesign.plots import cache

    ns = sessions_per_cache or list(cache.DEFAULT_SESSIONS)
    if min(ns) < 1 or max(ns) > 100_000 or len(ns) > 16:
        raise Invalid("sessions_per_cache: up to 16 integers in 1..100000", ("query",))
    curves = cache.cache_curves(load_stored(st.S, trace_id), ns, tier)
    return _render(fmt, lambda p: cache.write_png(curves, p), lambda p: cache.write_html(curves, p))


@router.get(
    "/traces/{trace_id}/overview.{fmt}",
    responses={**errors(401, 404, 422), **CONTENT},
    response_class=Response,
)
def trace_plot(
    trace_id: TraceId,
    fmt: Fmt,
    session: int | None = Query(
        None, ge=0, le=2**31, description="session index (default: a long one)"
    ),
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> Response:
    """Context per request over one session: main agent vs sub-agents, compactions."""
    from codesign.plots import trace as trace_plots

    view = trace_plots.session_view(load_stored(st.S, trace_id), session)
    return _render(
        fmt, lambda p: trace_plots.write_png(view, p), lambda p: trace_plots.write_html(view, p)
    )
