"""The catalog (systems, chips, models), custom hardware, and one-off analytic estimates.

Custom chips and systems live in the database (`HardwareRecord`) and are registered into
this process's hardware catalog by `sync_catalog`: after every change made here, and
whenever another process changed the table (checked cheaply on each catalog read)."""

from __future__ import annotations

import logging
import math
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Body, Depends, Response
from fastapi import Path as FastPath
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.auth import Principal
from api.db.models import HardwareRecord, utcnow
from api.db.traces import get_trace, sync_catalog, validate_hardware
from api.deps import AppState, read_access, state, write_access
from api.errors import Conflict, Invalid, Missing
from api.schemas import errors
from codesign.errors import CodesignError

log = logging.getLogger("codesign.api")

router = APIRouter(tags=["catalog"])

Kind = Literal["chip", "system"]
# a catalog key (as hwmodels validates names): anything else cannot name a custom entry
HardwareName = Annotated[
    str, FastPath(pattern=r"^[a-z0-9][a-z0-9_\-.]*$", max_length=200, description="its name")
]
CUSTOM = "custom"  # the catalog origin of database-backed entries
MAX_SYNTH_SESSIONS = 2000
MAX_TOKENS = 10_000_000
MAX_CONCURRENT_SESSIONS = 10_000_000
MAX_NAME = 200  # HardwareRecord.name


# --- keeping the process catalog in step with the database ----------------------------
_sync_lock = threading.Lock()
_seen: tuple[int, tuple[tuple[int, str], ...]] | None = None


def _fingerprint(S: sessionmaker[Session]) -> tuple[int, tuple[tuple[int, str], ...]]:
    q = select(HardwareRecord.id, HardwareRecord.updated_at).order_by(HardwareRecord.id)
    with S() as s:
        rows = tuple((int(i), str(t)) for i, t in s.execute(q))
    return id(S), rows


def refresh_catalog(S: sessionmaker[Session], force: bool = False) -> None:
    """Re-register the custom hardware when the table changed since the last sync (another
    API process or a test may have changed it); ``force`` always re-registers."""
    global _seen
    with _sync_lock:
        fp = _fingerprint(S)
        if not force and fp == _seen:
            return
        try:
            sync_catalog(S)
        except CodesignError as exc:  # a stored entry no longer validates: keep serving
            log.warning("custom hardware: %s", exc)
        _seen = fp


# --- listings -------------------------------------------------------------------------
def _is_custom(kind: str, name: str) -> bool:
    from hwmodels.catalog import default_catalog

    return default_catalog().origin.get(f"{kind}:{name}") == CUSTOM


def chip_out(chip: Any) -> dict[str, Any]:
    """A chip: its full document plus ``custom`` and the CLI's summary row."""
    from codesign.cli.hardware import chip_row

    return {
        **chip.model_dump(mode="json"),
        "custom": _is_custom("chip", chip.name),
        "summary": chip_row(chip),
    }


def system_out(system: Any) -> dict[str, Any]:
    """A system: its full document plus ``custom`` and the CLI's summary row."""
    return {
        **system.model_dump(mode="json"),
        "custom": _is_custom("system", system.name),
        "summary": system.summary(),
    }


@router.get("/systems", responses=errors(401))
def systems(
    st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> list[dict[str, Any]]:
    """Every system (built-in and custom): its catalog document (chip included), ``custom``
    (true for hardware added with POST /v1/hardware) and ``summary`` (the facts
    ``codesign catalog systems`` shows: per-chip bandwidths, HBM, power, price)."""
    from hwmodels.catalog import list_systems

    refresh_catalog(st.S)
    return [system_out(s) for s in list_systems()]


@router.get("/chips", responses=errors(401))
def chips(
    st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> list[dict[str, Any]]:
    """Every chip (built-in and custom): its catalog document, ``custom`` and ``summary``
    (the facts ``codesign catalog chips`` shows)."""
    from hwmodels.catalog import list_chips

    refresh_catalog(st.S)
    return [chip_out(c) for c in list_chips()]


@lru_cache(maxsize=1)
def _models() -> tuple[dict[str, Any], ...]:
    from codesign.models.registry import list_models

    return tuple(m.model_dump() for m in list_models())


@lru_cache(maxsize=1)
def _model_ids() -> frozenset[str]:
    return frozenset(m["id"].strip().lower() for m in _models())


@router.get("/models", responses=errors(401))
def models(_: Principal = Depends(read_access)) -> list[dict[str, Any]]:
    """Every known model (from the stored Hugging Face configs, plus aliases): id,
    architecture, parameter counts, KV bytes per token, whether it is supported (and why
    not)."""
    return list(_models())


# --- custom hardware ------------------------------------------------------------------
class HardwareIn(BaseModel):
    """A custom chip or system: the same document as a catalog YAML file."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    spec: dict[str, Any] = Field(description="the chip or system document (as catalog YAML)")


def record_out(rec: HardwareRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "kind": rec.kind,
        "name": rec.name,
        "owner": rec.owner,
        "created_at": rec.created_at.isoformat() + "Z",
        "updated_at": rec.updated_at.isoformat() + "Z",
        "spec": rec.spec,
    }


def _records(s: Session, kind: str | None = None) -> list[HardwareRecord]:
    q = select(HardwareRecord).order_by(HardwareRecord.id)
    if kind is not None:
        q = q.where(HardwareRecord.kind == kind)
    return list(s.scalars(q))


def _ref(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def _users_of_chip(s: Session, chip: str) -> list[str]:
    """Custom systems naming ``chip`` as their accelerator or host CPU."""
    return [
        r.name
        for r in _records(s, "system")
        if chip in (_ref(r.spec.get("chip")), _ref(r.spec.get("host_cpu")))
    ]


def reject_nonfinite(doc: Any, loc: tuple[str | int, ...]) -> None:
    """422 naming the first NaN or infinite number in a JSON document (Python's JSON
    parser accepts ``NaN``, ``Infinity`` and ``1e400``; the models, and PostgreSQL's JSON,
    do not want them)."""
    if isinstance(doc, float) and not math.isfinite(doc):
        where = ".".join(str(x) for x in loc[1:]) or "body"
        raise Invalid(f"{where}: numbers must be finite, got {doc}", loc)
    if isinstance(doc, dict):
        for k, v in doc.items():
            reject_nonfinite(v, (*loc, str(k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            reject_nonfinite(v, (*loc, i))


def _validate(
    kind: str, spec: dict[str, Any], loc: tuple[str | int, ...] = ("body", "spec")
) -> Any:
    reject_nonfinite(spec, loc)
    if not isinstance(spec.get("name"), str) or not spec["name"].strip():
        raise Invalid(f"{kind} spec: field 'name' is required", (*loc, "name"))
    if len(spec["name"]) > MAX_NAME:
        raise Invalid(f"{kind} spec: name longer than {MAX_NAME} characters", (*loc, "name"))
    try:
        return validate_hardware(kind, spec)
    except (ValueError, TypeError) as exc:  # anything pydantic did not turn into a SpecError
        raise Invalid(f"hardware {kind}: {exc}", loc) from None


def _check_names(s: Session, kind: str, obj: Any, replacing: str | None = None) -> None:
    """409 when the name (or, for a system, an alias) is taken by the built-in catalog or,
    for aliases, by another custom system."""
    from hwmodels.catalog import default_catalog

    cat = default_catalog()
    if kind == "chip":
        if obj.name in cat.chips and not _is_custom("chip", obj.name):
            raise Conflict(f"chip {obj.name!r} is a built-in chip; pick another name")
        return
    for n in dict.fromkeys([obj.name, *(a.strip().lower() for a in obj.aliases)]):
        owner = cat.aliases.get(n)
        if n in cat.systems and not _is_custom("system", n):
            raise Conflict(f"{n!r} is a built-in system; pick another name")
        if owner and owner in cat.systems and not _is_custom("system", owner):
            raise Conflict(f"{n!r} is an alias of the built-in system {owner!r}; pick another")
    mine = {obj.name, *(a.strip().lower() for a in obj.aliases)}
    for r in _records(s, "system"):
        if r.name in (obj.name, replacing):
            continue
        theirs = {r.name, *(str(a).strip().lower() for a in r.spec.get("aliases") or [])}
        if mine & theirs:
            clash = ", ".join(sorted(mine & theirs))
            raise Conflict(f"{clash} already names the custom system {r.name!r}")


def _check_dependents(s: Session, chip: Any) -> None:
    """Replacing a chip must keep the custom systems that use it valid."""
    from hwmodels.catalog import System, default_catalog, format_validation_error

    users = _users_of_chip(s, chip.name)
    if not users:
        return
    pool = {**default_catalog().chips, chip.name: chip}
    for r in _records(s, "system"):
        if r.name not in users:
            continue
        try:
            System.model_validate(r.spec, context={"chips": pool})
        except ValidationError as err:
            why = format_validation_error(err, f"custom system {r.name!r}")
            raise Conflict(f"chip {chip.name!r} is used by {why}") from None


@router.get("/hardware", responses=errors(401))
def list_hardware(
    st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> list[dict[str, Any]]:
    """The custom chips and systems stored on this server (oldest first), with owner and
    the document as submitted."""
    with st.S() as s:
        return [record_out(r) for r in _records(s)]


@router.post("/hardware", status_code=201, responses=errors(401, 403, 409, 413, 422))
def add_hardware(
    response: Response,
    body: HardwareIn,
    st: AppState = Depends(state),
    who: Principal = Depends(write_access),
) -> dict[str, Any]:
    """Add a custom chip or system, validated exactly like a catalog YAML file (422 names
    the field). A system may name any built-in or custom chip. A name (or system alias)
    taken by the built-in catalog → 409; an existing custom entry → 409 (use PUT).
    Jobs and estimates can use it at once."""
    refresh_catalog(st.S)
    obj = _validate(body.kind, body.spec)
    with st.S() as s:
        _check_names(s, body.kind, obj)
        q = select(HardwareRecord.id).where(
            HardwareRecord.kind == body.kind, HardwareRecord.name == obj.name
        )
        if s.scalar(q) is not None:
            raise Conflict(
                f"custom {body.kind} {obj.name!r} exists; use PUT /v1/hardware/{body.kind}/"
                f"{obj.name} to replace it"
            )
        now = utcnow()
        rec = HardwareRecord(
            kind=body.kind,
            name=obj.name,
            owner=who.owner,
            spec=body.spec,
            created_at=now,
            updated_at=now,
        )
        s.add(rec)
        try:
            s.commit()
        except IntegrityError:
            raise Conflict(f"custom {body.kind} {obj.name!r} exists; use PUT") from None
        out = record_out(rec)
    refresh_catalog(st.S, force=True)
    response.headers["Location"] = f"/v1/hardware/{body.kind}/{obj.name}"
    return out


def _custom(s: Session, kind: str, name: str) -> HardwareRecord:
    rec = s.scalars(
        select(HardwareRecord).where(HardwareRecord.kind == kind, HardwareRecord.name == name)
    ).first()
    if rec is None:
        raise Missing(f"no custom {kind} named {name!r} (GET /v1/hardware lists them)")
    return rec


@router.put("/hardware/{kind}/{name}", responses=errors(401, 403, 404, 409, 413, 422))
def replace_hardware(
    kind: Kind,
    name: HardwareName,
    spec: dict[str, Any] = Body(..., description="the new chip or system document"),
    st: AppState = Depends(state),
    _: Principal = Depends(write_access),
) -> dict[str, Any]:
    """Replace a custom chip or system (404 when there is no custom entry of that name;
    built-in entries cannot be replaced). The document's ``name`` must equal the path's
    (422 otherwise). Replacing a chip that custom systems use must keep them valid (409
    naming the system otherwise)."""
    refresh_catalog(st.S)
    with st.S() as s:
        rec = _custom(s, kind, name)
        if spec.get("name") != name:
            raise Invalid(
                f"spec name {spec.get('name')!r} differs from the path's {name!r}; to rename, "
                "DELETE the entry and POST a new one",
                ("body", "name"),
            )
        obj = _validate(kind, spec, ("body",))
        _check_names(s, kind, obj, replacing=name)
        if kind == "chip":
            _check_dependents(s, obj)
        rec.spec = spec
        rec.updated_at = utcnow()
        s.commit()
        out = record_out(rec)
    refresh_catalog(st.S, force=True)
    return out


@router.delete("/hardware/{kind}/{name}", status_code=204, responses=errors(401, 403, 404, 409))
def delete_hardware(
    kind: Kind,
    name: HardwareName,
    st: AppState = Depends(state),
    _: Principal = Depends(write_access),
) -> Response:
    """Remove a custom chip or system (404 when there is none of that name). A chip that a
    custom system still uses → 409 naming the system."""
    with st.S() as s:
        rec = _custom(s, kind, name)
        if kind == "chip":
            users = _users_of_chip(s, name)
            if users:
                raise Conflict(
                    f"chip {name!r} is used by the custom system(s) {', '.join(users)}; "
                    "delete or replace them first"
                )
        s.delete(rec)
        s.commit()
    refresh_catalog(st.S, force=True)
    return Response(status_code=204)


# --- estimates ------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EstimateSynth(_Strict):
    preset: str = "claude-code-fleet"
    sessions: int = Field(200, ge=1, le=MAX_SYNTH_SESSIONS)
    seed: int = Field(0, ge=0, le=2**63 - 1)

    @field_validator("preset")
    @classmethod
    def _known(cls, v: str) -> str:
        from codesign.workload.synth import PRESETS

        if v not in PRESETS:
            raise ValueError(f"unknown synth preset {v!r} (known: {', '.join(PRESETS)})")
        return v


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


class EstimateOut(BaseModel):
    metrics: dict[str, float | None]
    feasible: bool
    reason: str


def check_model(model: str, where: tuple[str, ...]) -> None:
    if model.strip().lower() not in _model_ids():
        raise Invalid(
            f"unknown model {model!r}: over the API a model is a catalog id (GET /v1/models)",
            where,
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
    from api.routers.traces import stored_trace_id, synthesize
    from codesign.workload import load_trace

    if w.synth is not None:
        where = ("body", "workload", "synth", "sessions")
        return synthesize(w.synth.preset, w.synth.sessions, w.synth.seed, where)

    ref = w.trace or ""
    tid = stored_trace_id(ref)
    if tid is None:
        raise Invalid(
            f"workload.trace {ref!r}: name a stored trace as 'trace:ID'; upload the trace "
            "with POST /v1/traces (or make one with POST /v1/traces/synth)",
            ("body", "workload", "trace"),
        )
    try:
        rec = get_trace(st.S, tid)
    except Missing:
        where = ("body", "workload", "trace")
        raise Invalid(f"workload.trace: trace {tid} not found", where) from None
    with tempfile.TemporaryDirectory(prefix="codesign-estimate-") as tmp:
        path = Path(tmp) / f"trace-{tid}.parquet"
        path.write_bytes(rec.data)
        return load_trace(path, "parquet")


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@router.post("/estimate", response_model=EstimateOut, responses=errors(401, 413, 422))
def estimate(
    body: EstimateIn, st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> EstimateOut:
    """Analytic metrics of one deployment serving ``concurrent_sessions`` agent sessions
    of a workload (a synthetic preset of at most 2000 sessions, a stored trace
    ``trace:ID``, or fixed-length requests ``{isl, osl}``), synchronously. Metrics that
    are not finite are null; an infeasible deployment has ``feasible: false`` and the
    reason. A deployment that does not validate, an unknown model or system, or an
    unknown trace → 422."""
    from codesign.evaluate import METRICS, evaluate
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
        out = evaluate([dep], load, n)
    except CodesignError:
        raise
    except (ArithmeticError, ValueError) as exc:  # numbers the models cannot handle
        raise Invalid(f"cannot evaluate this deployment and workload: {exc}") from None
    return EstimateOut(
        metrics={m: _finite(out[m][0]) for m in METRICS},
        feasible=bool(out["feasible"][0]),
        reason=str(out["reason"][0] or ""),
    )
