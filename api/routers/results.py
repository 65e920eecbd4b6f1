"""Results: the Pareto set (JSON or CSV, filtered, sorted, paginated), single candidates,
the Pareto plot (PNG, interactive HTML) and engine exports of a candidate."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse

from api.auth import Principal
from api.db import results as R
from api.db.jobs import get_job
from api.deps import AppState, read_access, state
from api.errors import Invalid, Missing
from api.schemas import Id, errors

router = APIRouter(tags=["results"])
Format = Literal["dynamo", "vllm", "sglang", "trtllm"]


@router.get(
    "/jobs/{job_id}/pareto",
    responses={**errors(401, 404, 422), 200: {"content": {"text/csv": {}}}},
    response_class=Response,
)
async def pareto(
    job_id: Id,
    where: list[str] = Query([], description="bounds: METRIC>=VALUE or METRIC<=VALUE"),
    sort: str | None = Query(None, description="a metric (default: Pareto rank)"),
    order: Literal["asc", "desc"] = "desc",
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31),
    format: Literal["json", "csv"] = "json",
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> Response:
    """The job's Pareto points (marked when the job finishes): ``{"items", "total",
    "next_offset"}``, or CSV. (Async with short, indexed reads: the hot query of the API.)"""
    from codesign.evaluate import METRICS

    job = R.job_brief(st.S, job_id)
    bounds = R.parse_where(where, METRICS)
    if sort is not None and sort not in METRICS:
        known = ", ".join(METRICS)
        raise Invalid(f"sort: unknown metric {sort!r} (known: {known})", ("query", "sort"))
    points, text = R.pareto_points(st.S, job)
    pts = R.select_points(points, bounds, sort, order == "desc")
    page = pts[offset : offset + limit]
    if format == "csv":
        return Response(_csv(page), media_type="text/csv")
    nxt = offset + limit if offset + limit < len(pts) else "null"
    items = ",".join(text[p["id"]] for p in page)
    body = f'{{"items":[{items}],"total":{len(pts)},"next_offset":{nxt}}}'
    return Response(body, media_type="application/json")


def _csv(points: list[dict[str, Any]]) -> str:
    from codesign.evaluate import METRICS

    keys = sorted({k for p in points for k in p["params"]})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "rank", "recommended", *keys, *METRICS, "hv_contribution"])
    for p in points:
        ms = p["metrics"]
        row = [p["id"], p["rank"], p["recommended"], *(p["params"].get(k, "") for k in keys)]
        row += ["" if ms.get(m) is None else f"{ms[m]:.6g}" for m in METRICS]
        w.writerow([*row, p["hv_contribution"]])
    return buf.getvalue()


@router.get("/jobs/{job_id}/candidates/{cid}", responses=errors(401, 404))
def candidate(
    job_id: Id,
    cid: Id,
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> dict[str, Any]:
    """Any evaluated candidate: parameters, metrics (both fidelities when verified),
    feasibility and reason, Pareto membership, its deployment, and for a feasible one its
    ``error_band`` (the calibration's measured / predicted spread for its mode and engine
    around its latency metrics, as ``POST /v1/estimate`` gives; null for afd)."""
    job = get_job(st.S, job_id)
    c = R.get_candidate(st.S, job, cid)
    out = R.point_out(c, job.recommended, full=True)
    out["deployment"] = R.deployment_of(job, c)
    out["error_band"] = _error_band(job, out) if c.feasible else None
    return out


def _error_band(job: Any, out: dict[str, Any]) -> dict[str, Any] | None:
    """The candidate's band; None where its stored deployment no longer validates (a
    job stored by an older version): the band is a guide, never a reason to fail."""
    from pydantic import ValidationError

    from codesign.deployment import Deployment
    from codesign.perf.calibration import load_calibration
    from codesign.perf.deployment_band import deployment_error_band

    try:
        dep = Deployment.model_validate(out["deployment"])
    except ValidationError:
        return None
    fixed = (job.spec.get("workload") or {}).get("fixed") is not None
    return deployment_error_band(dep, out["metrics"] or {}, load_calibration(), fixed)


@router.get(
    "/jobs/{job_id}/candidates/{cid}/export",
    responses=errors(401, 404, 422),
)
def export_candidate(
    job_id: Id,
    cid: Id,
    format: Format = Query(..., description="dynamo | vllm | sglang | trtllm"),
    engine_version: str | None = Query(None, max_length=64),
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> dict[str, Any]:
    """The candidate's deployment as engine configs (every flag checked against the stated
    engine version's recorded arguments); 422 with the reason when it cannot be expressed."""
    from codesign.deployment import Deployment
    from codesign.export import export

    job = get_job(st.S, job_id)
    c = R.get_candidate(st.S, job, cid)
    dep = Deployment.model_validate(R.deployment_of(job, c))
    res = export(dep, format, engine_version)
    return {
        "format": res.format,
        "engine": res.engine,
        "engine_version": res.engine_version,
        "files": res.files,
        "notes": res.notes,
        "candidate": cid,
    }


def _plot(st: AppState, job_id: Id, kind: str) -> bytes:
    from api.routers.plots import render_bytes
    from codesign.plots.pareto import pareto_data, write_png
    from codesign.plots.pareto_html import write_html

    job = get_job(st.S, job_id)
    pts, _ = R.pareto_points(st.S, job)
    if not pts:
        raise Missing(f"job {job_id} has no Pareto points yet (status {job.status})")
    data = pareto_data(R.plot_summary(job, pts))
    return render_bytes(kind, lambda p: write_png(data, p), lambda p: write_html(data, p))


@router.get(
    "/jobs/{job_id}/pareto.png",
    responses={**errors(401, 404), 200: {"content": {"image/png": {}}}},
    response_class=Response,
)
def pareto_png(
    job_id: Id, st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> Response:
    """The Pareto front as a PNG (pairwise objective panels, SLO region, recommended point)."""
    return Response(_plot(st, job_id, "png"), media_type="image/png")


@router.get(
    "/jobs/{job_id}/pareto.html",
    responses=errors(401, 404),
    response_class=HTMLResponse,
)
def pareto_html(
    job_id: Id, st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> HTMLResponse:
    """The Pareto front as interactive plotly HTML (hover: deployment and metrics)."""
    return HTMLResponse(_plot(st, job_id, "html").decode())
