"""Reading a job's results: its Pareto points (filtered and sorted in Python, never in SQL
text), single candidates, a candidate's deployment (stored for Pareto points, rebuilt from
its parameters for the rest), and the summary the plots take."""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.db.codec import json_ready, public_metrics
from api.db.models import Candidate, Job
from api.errors import Invalid, Missing

WHERE_RE = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<|==)\s*([-+0-9.eE]+|inf|-inf)\s*$")
_CACHE_SIZE = 64
_cache: OrderedDict[tuple[int, Any], Any] = OrderedDict()
_lock = threading.Lock()


def point_out(c: Candidate, recommended: int | None, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "rank": c.pareto_rank,
        "params": {k: v for k, v in c.params.items() if v is not None},
        "metrics": public_metrics(c.metrics),
        "metrics_simulated": public_metrics(c.metrics_simulated),
        "pareto_simulated": c.pareto_simulated,
        "hv_contribution": json_ready(c.hv_contribution),
        "recommended": c.id == recommended,
        "pareto": c.pareto,
        "deployment": c.deployment,
    }
    if full:
        out.update(batch=c.batch, phase=c.phase, feasible=c.feasible, ok=c.ok, reason=c.reason)
    return out


class JobBrief(NamedTuple):
    """The few job columns a Pareto query needs (not the spec and result JSON)."""

    id: int
    status: str
    finished_at: Any
    recommended: int | None


def job_brief(S: sessionmaker[Session], job_id: int) -> JobBrief:
    q = select(Job.id, Job.status, Job.finished_at, Job.recommended).where(Job.id == job_id)
    with S() as s:
        row = s.execute(q).first()
    if row is None:
        raise Missing(f"job {job_id} not found")
    return JobBrief(*row)


def pareto_points(
    S: sessionmaker[Session], job: Job | JobBrief
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """The job's Pareto points in rank order and each point's JSON text by id (cached for
    finished jobs, which never change, so a query only filters, sorts and joins text)."""
    key = (job.id, job.finished_at)
    if job.finished_at is not None:
        with _lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    if job.status in ("queued", "running"):
        pts = interim_front(S, job.id)
    else:
        q = (
            select(Candidate)
            .where(Candidate.job_id == job.id, Candidate.pareto.is_(True))
            .order_by(Candidate.pareto_rank)
        )
        with S() as s:
            pts = [point_out(c, job.recommended) for c in s.scalars(q)]
    out = (pts, {p["id"]: json.dumps(p, allow_nan=False) for p in pts})
    if job.finished_at is not None:
        with _lock:
            _cache[key] = out
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return out


def interim_front(S: sessionmaker[Session], job_id: int) -> list[dict[str, Any]]:
    """A running job's front so far: the non-dominated candidates among those stored that
    meet every constraint, best first by the first objective (``rank`` in that order,
    ``interim`` true; deployments are decoded on request by the candidate endpoint)."""
    import numpy as np

    from api.db.codec import decode_float
    from search.pareto import nondominated

    with S() as s:
        spec = s.scalar(select(Job.spec).where(Job.id == job_id)) or {}
        q = select(Candidate.id, Candidate.params, Candidate.metrics)
        rows = s.execute(q.where(Candidate.job_id == job_id, Candidate.ok.is_(True))).all()
    objectives = []
    for o in spec.get("objectives", []):
        d, m = o.split() if isinstance(o, str) else (o["direction"], o["metric"])
        objectives.append((m, -1.0 if d == "max" else 1.0))
    if not rows or not objectives:
        return []
    f = np.array([[sign * decode_float(r[2].get(m)) for m, sign in objectives] for r in rows])
    finite = np.isfinite(f).all(axis=1)
    idx = np.flatnonzero(finite)[nondominated(f[finite])]
    idx = idx[np.argsort(f[idx, 0], kind="stable")]
    return [
        {
            "id": rows[i][0],
            "rank": rank,
            "params": {k: v for k, v in rows[i][1].items() if v is not None},
            "metrics": public_metrics(rows[i][2]),
            "metrics_simulated": None,
            "pareto_simulated": None,
            "hv_contribution": None,
            "recommended": False,
            "pareto": False,
            "interim": True,
            "deployment": None,
        }
        for rank, i in enumerate(idx.tolist())
    ]


def parse_where(items: list[str], metrics: tuple[str, ...]) -> list[tuple[str, str, float]]:
    out = []
    for i, w in enumerate(items):
        m = WHERE_RE.match(w)
        if not m:
            raise Invalid(
                f"where {w!r}: write METRIC>=VALUE or METRIC<=VALUE", ("query", "where", i)
            )
        name, op, value = m.groups()
        if name not in metrics:
            raise Invalid(
                f"where {w!r}: unknown metric {name!r} (known: {', '.join(metrics)})",
                ("query", "where", i),
            )
        try:
            out.append((name, op, float(value)))
        except ValueError:
            raise Invalid(
                f"where {w!r}: {value!r} is not a number", ("query", "where", i)
            ) from None
    return out


_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
}


def select_points(
    points: list[dict[str, Any]],
    where: list[tuple[str, str, float]],
    sort: str | None,
    descending: bool,
) -> list[dict[str, Any]]:
    """Points passing every bound (a missing value fails a bound), sorted by ``sort``
    (missing values last) or kept in rank order."""
    keep = []
    for p in points:
        ms = p["metrics"]
        if all(ms.get(n) is not None and _OPS[op](ms[n], v) for n, op, v in where):
            keep.append(p)
    if sort is not None:
        sign = -1.0 if descending else 1.0
        keep.sort(
            key=lambda p: (p["metrics"].get(sort) is None, sign * (p["metrics"].get(sort) or 0.0))
        )
    return keep


def get_candidate(S: sessionmaker[Session], job: Job, cid: int) -> Candidate:
    with S() as s:
        c = s.get(Candidate, cid)
    if c is None or c.job_id != job.id:
        raise Missing(f"candidate {cid} not found in job {job.id}")
    return c


def deployment_of(job: Job, c: Candidate) -> dict[str, Any]:
    """The candidate's deployment (stored for Pareto points, else decoded from its
    parameters exactly as the search decoded it)."""
    if c.deployment is not None:
        return c.deployment
    from search.decode import Decoder
    from search.space import Space, model_is_moe
    from search.spec import JobSpec

    spec = JobSpec.from_data(job.spec)
    space = Space(spec, model_is_moe(spec))
    params = {}
    for k, v in c.params.items():
        if v is None or k not in space.by_name:
            continue
        params[k] = float(v) if space.by_name[k].continuous else v
    pts = space.from_params([params])
    dep = Decoder(space).deployment(pts, 0)
    return dep.model_dump(mode="json", exclude_defaults=True)


def plot_summary(job: Job, points: list[dict[str, Any]]) -> dict[str, Any]:
    """The `search.report.summary` shape `codesign.plots.pareto.pareto_data` reads."""
    res = job.result or {}
    spec = job.spec
    rec = next((i for i, p in enumerate(points) if p["recommended"]), None)
    objectives = res.get("objectives") or [
        o if isinstance(o, str) else f"{o['direction']} {o['metric']}" for o in spec["objectives"]
    ]
    pts = [
        {**p, "metrics": {k: (math.nan if v is None else v) for k, v in p["metrics"].items()}}
        for p in points
    ]
    return {
        "name": job.name,
        "objectives": objectives,
        "constraints": res.get("constraints") or spec.get("constraints") or {},
        "hypervolume": job.hypervolume,
        "evaluations": job.evaluations,
        "recommended": rec,
        "pareto": pts,
    }
