"""One-off analytic estimates: a deployment on a workload, synchronously."""

from __future__ import annotations

import logging
from typing import Any, Self

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Principal
from api.db.codec import public_metrics
from api.db.traces import load_stored
from api.deps import AppState, read_access, state
from api.errors import Invalid
from api.routers.catalog import check_model, refresh_catalog, reject_nonfinite
from api.schemas import errors
from codesign.errors import CodesignError
from search.spec import SynthWorkload

log = logging.getLogger("codesign.api")
MAX_SYNTH_SESSIONS = 2000
MAX_TOKENS = 10_000_000
MAX_CONCURRENT_SESSIONS = 10_000_000

router = APIRouter(tags=["estimate"])


# --- estimates ------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EstimateSynth(SynthWorkload):  # the job spec's synth block, bounded for the API
    sessions: int = Field(200, ge=1, le=MAX_SYNTH_SESSIONS)
    seed: int = Field(0, ge=0, le=2**63 - 1)


class EstimateFixed(_Strict):
    isl: int = Field(ge=1, le=MAX_TOKENS, description="input tokens per request")
    osl: int = Field(ge=1, le=MAX_TOKENS, description="output tokens per request")


class EstimateWorkload(_Strict):
    synth: EstimateSynth | None = None
    trace: str | None = Field(None, max_length=100, description="a stored trace: trace:ID")
    fixed: EstimateFixed | None = None
    format: str | None = Field(None, description="ignored: stored traces are native Parquet")

    @model_validator(mode="after")
    def _one(self) -> Self:
        if sum(x is not None for x in (self.synth, self.trace, self.fixed)) != 1:
            raise ValueError("give exactly one of workload.synth, workload.trace, workload.fixed")
        return self


class EstimateIn(_Strict):
    deployment: dict[str, Any] = Field(
        description="a deployment document (see codesign.deployment)"
    )
    workload: EstimateWorkload
    concurrent_sessions: float = Field(64, gt=0, le=MAX_CONCURRENT_SESSIONS, allow_inf_nan=False)


class ErrorBandOut(BaseModel):
    band: str = Field(description="which band: <mode>/<engine>, <mode> or all")
    source: str = Field(description="the predictions it was read from")
    rows: int = Field(description="measured rows behind it")
    ttft_ratio: list[float] = Field(description="measured / predicted TTFT, p10 p50 p90")
    tpot_ratio: list[float] = Field(description="measured / predicted TPOT, p10 p50 p90")
    ranges: dict[str, list[float]] = Field(
        description="each latency metric's [low, high]: the metric times the p10 and p90 ratio"
    )
    unmeasured: list[str] = Field(description="what this estimate has that the rows had not")


class EstimateOut(BaseModel):
    metrics: dict[str, float | None]
    feasible: bool
    reason: str
    error_band: ErrorBandOut | None = Field(
        None,
        description="the calibration's measured / predicted spread for the deployment's "
        "mode and engine; null where it has none (afd) or the deployment is infeasible",
    )


def _deployment(doc: dict[str, Any]) -> Any:
    from codesign.deployment import Deployment
    from codesign.specio import validate_spec
    from hwmodels.catalog import get_system

    dep = validate_spec(Deployment, doc, "deployment")
    check_model(dep.model, ("body", "deployment", "model"))
    pools = [("pools", p) for p in dep.pools]
    if dep.subagents is not None:
        check_model(dep.subagents.model, ("body", "deployment", "subagents", "model"))
        pools += [("subagents.pools", p) for p in dep.subagents.pools]
    for where, p in pools:
        try:
            get_system(p.system)
        except CodesignError as exc:
            raise Invalid(f"deployment.{where}: {exc}", ("body", "deployment")) from None
    return dep


def _trace(st: AppState, w: EstimateWorkload) -> Any:
    """The synthetic or stored trace of a workload (not ``fixed``)."""
    from api.routers.traces import synthesize, trace_ref

    if w.synth is not None:
        where = ("body", "workload", "synth", "sessions")
        return synthesize(w.synth.preset, w.synth.sessions, w.synth.seed, where)

    return load_stored(st.S, trace_ref(st.S, w.trace or ""))


@router.post("/estimate", response_model=EstimateOut, responses=errors(401, 413, 422))
def estimate(
    body: EstimateIn, st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> EstimateOut:
    """Analytic metrics of one deployment serving ``concurrent_sessions`` agent sessions
    of a workload (a synthetic preset of at most 2000 sessions, a stored trace
    ``trace:ID``, or fixed-length requests ``{isl, osl}``), synchronously. Metrics that
    are not finite are null; an infeasible deployment has ``feasible: false`` and the
    reason. ``error_band`` gives each latency metric a [low, high] range from the
    calibration's measured / predicted spread for the deployment's mode and engine, and
    what the workload has that the measured rows had not. A deployment that does not
    validate, an unknown model or system, or an unknown trace → 422."""
    from codesign.evaluate import METRICS, evaluate
    from codesign.perf.calibration import load_calibration
    from codesign.perf.deployment_band import deployment_error_band
    from codesign.workload.agent_load import agent_load, session_gaps
    from codesign.workload.summary import summarize
    from search.spec import FixedWorkload
    from search.workload import FIXED_TRACE_SESSIONS, fixed_trace

    refresh_catalog(st.S)
    reject_nonfinite(body.deployment, ("body", "deployment"))
    dep = _deployment(body.deployment)
    w, n = body.workload, body.concurrent_sessions
    try:
        if w.fixed is not None:
            sessions = min(max(round(n), 1), FIXED_TRACE_SESSIONS)
            trace = fixed_trace(FixedWorkload(isl=w.fixed.isl, osl=w.fixed.osl), sessions)
        else:
            trace = _trace(st, w)
        load = agent_load(summarize(trace), session_gaps(trace), merge_tiers=dep.subagents is None)
        calib = load_calibration()
        out = evaluate([dep], load, n, calib)
    except CodesignError:
        raise
    except (ArithmeticError, ValueError) as exc:  # numbers the models cannot handle
        raise Invalid(f"cannot evaluate this deployment and workload: {exc}") from None
    metrics = public_metrics({m: out[m][0] for m in METRICS}) or {}
    feasible = bool(out["feasible"][0])
    band = deployment_error_band(dep, metrics, calib, w.fixed is not None) if feasible else None
    return EstimateOut(
        metrics=metrics,
        feasible=feasible,
        reason=str(out["reason"][0] or ""),
        error_band=ErrorBandOut(**band) if band else None,
    )
