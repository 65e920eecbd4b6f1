"""Workloads: upload a trace file (any supported format) or synthesise one; list, show,
delete. Traces are stored as native Parquet; jobs and estimates name them ``trace:ID``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as FastPath
from pydantic import Field, field_validator
from sqlalchemy import delete, select
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.db.models import Job, TraceRecord
from api.db.traces import get_trace, store_trace, trace_id_of
from api.deps import AppState, read_access, state, write_access
from api.errors import Conflict, Invalid, Missing, TooLarge
from api.schemas import MAX_ID, Page, errors, iso
from codesign.errors import CodesignError
from search.spec import SynthWorkload

router = APIRouter(tags=["workloads"])

MAX_SYNTH_SESSIONS = 5000
# a synthetic trace's memory grows with its prefix-block hashes (claude-code-fleet: ~150k
# per session, ~7 bytes of peak memory each while the statistics are computed); a
# request that would make more is refused before it is generated
MAX_SYNTH_HASH_IDS = 50_000_000
PILOT_SESSIONS = 16
TraceId = Annotated[int, FastPath(ge=1, le=MAX_ID, description="the trace id")]
BINARY = {"type": "string", "format": "binary"}


def trace_ref(S: Any, ref: str, loc: tuple[str | int, ...] = ("body", "workload", "trace")) -> int:
    """The id of the stored trace ``ref`` (``trace:ID``) names, or a 422 saying how to name
    one: over the API a workload never reads a file path of the server."""
    tid = trace_id_of(ref)
    if tid is None:
        raise Invalid(
            f"workload.trace {ref!r}: over the API a workload names a stored trace as "
            "'trace:ID' (upload with POST /v1/traces or make one with POST /v1/traces/synth)",
            loc,
        )
    try:
        get_trace(S, tid)
    except Missing:
        raise Invalid(f"workload.trace: trace {tid} not found", loc) from None
    return tid


def trace_out(rec: Any, stats: bool = False) -> dict[str, Any]:
    """The trace object (a `TraceRecord` or a row of its columns); ``stats`` on request."""
    out: dict[str, Any] = {
        "id": rec.id,
        "name": rec.name,
        "source_format": rec.source_format,
        "sessions": rec.sessions,
        "requests": rec.requests,
        "bytes": rec.bytes,
        "created_at": iso(rec.created_at),
        "owner": rec.owner,
    }
    if stats:
        out["stats"] = rec.stats
    return out


def _formats() -> dict[str, Any]:
    from codesign.workload import importers

    return importers()


def _known() -> str:
    return ", ".join(sorted(_formats()))


class _Unparsable(Exception):
    """The upload is not a trace of any (or the requested) format."""


def _parse(path: Path, fmt: str | None, shown: str) -> Any:
    """Detect (unless given) and load the uploaded trace; a 422 naming the problem."""
    from codesign.workload.importers.base import detect_format, load_trace

    def clean(msg: str) -> str:  # the temporary path means nothing to the client
        return msg.replace(str(path.parent) + "/", "").replace(path.name, shown)

    try:
        if fmt is None:
            try:
                fmt = detect_format(path)
            except CodesignError:
                raise _Unparsable(
                    f"cannot tell the trace format of the upload; pass ?format=F (known: "
                    f"{_known()})"
                ) from None
            suffix = _formats()[fmt].suffixes[0]
            path = path.rename(path.with_name(path.name + suffix))
        trace = load_trace(path, fmt)
    except _Unparsable:
        raise
    except CodesignError as exc:
        raise _Unparsable(clean(str(exc))) from None
    except (ValueError, KeyError, TypeError, IndexError, ArithmeticError, OSError, EOFError) as exc:
        # malformed bytes an importer did not anticipate: still the upload's fault
        raise _Unparsable(
            f"{shown}: not a valid {fmt} trace: {type(exc).__name__}: {exc}"
        ) from None
    if trace.n_requests == 0:
        raise _Unparsable(f"{shown}: the trace has no requests")
    return trace


@router.post(
    "/traces",
    status_code=201,
    responses=errors(401, 403, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the trace file's bytes (JSONL, JSON, CSV or Parquet; may be gzipped)",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_trace(
    request: Request,
    response: Response,
    name: str | None = Query(None, min_length=1, max_length=200, description="trace name"),
    format: str | None = Query(None, description="trace format (default: detected)"),
    st: AppState = Depends(state),
    who: Principal = Depends(write_access),
) -> dict[str, Any]:
    """Upload a trace file (claude-code JSONL, mooncake, azure CSV, native JSONL or
    Parquet; gzip is fine): streamed to a temporary file (413 once it exceeds the server's
    limit), format detected unless ``format`` is given, parsed and validated (422 naming
    the line and field), then stored as native Parquet with its statistics. 201 + the
    trace + ``Location``."""
    limit = st.settings.max_trace_bytes
    if name is not None and not name.isprintable():
        raise Invalid("name: control characters are not allowed", ("query", "name"))
    if format is not None and format not in _formats():
        raise Invalid(f"unknown trace format {format!r} (known: {_known()})", ("query", "format"))
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the trace is {int(declared):,} bytes; this server's limit is {limit:,}")
    shown = name or "upload"
    with tempfile.TemporaryDirectory(prefix="codesign-upload-") as tmp:
        suffix = _formats()[format].suffixes[0] if format else ""
        path = Path(tmp) / f"upload{suffix}"
        size = 0
        with path.open("wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the trace exceeds this server's limit of {limit:,} bytes")
                fh.write(chunk)
        if size == 0:
            raise Invalid("empty request body: send the trace file's bytes", ("body",))
        try:
            trace = await run_in_threadpool(_parse, path, format, shown)
        except _Unparsable as exc:
            raise Invalid(str(exc), ("body",)) from None
        rec = await run_in_threadpool(store_trace, st.S, trace, shown, who.owner)
    response.headers["Location"] = f"/v1/traces/{rec.id}"
    return trace_out(rec)


class SynthIn(SynthWorkload):
    """A synthetic trace: a preset (see ``codesign trace synth --help``), sessions, seed
    (the job spec's synth block, bounded for the API) and a name."""

    sessions: int = Field(200, ge=1, le=MAX_SYNTH_SESSIONS)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    name: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        if v is not None and not v.isprintable():
            raise ValueError("control characters are not allowed")
        return v


def check_synth_size(
    preset_name: str, sessions: int, seed: int, loc: tuple[str | int, ...] = ("body",)
) -> None:
    """Refuse (422) a synthetic trace whose size would strain the server: the first
    sessions are generated (session k is the same for any session count) and the
    prefix-block hashes of the whole trace projected from them."""
    from codesign.workload.synth import generate, preset

    if sessions <= PILOT_SESSIONS:
        return
    pilot = generate(
        preset(preset_name).model_copy(update={"sessions": PILOT_SESSIONS, "seed": seed})
    )
    per_session = pilot.hash_ids.size / PILOT_SESSIONS
    if per_session * sessions > MAX_SYNTH_HASH_IDS:
        most = max(int(MAX_SYNTH_HASH_IDS / per_session), PILOT_SESSIONS)
        raise Invalid(
            f"preset {preset_name!r} with {sessions:,} sessions would make about "
            f"{per_session * sessions / 1e6:,.0f} M prefix-block hashes, over this "
            f"server's limit of {MAX_SYNTH_HASH_IDS / 1e6:,.0f} M: ask for at most about "
            f"{most:,} sessions (or generate it locally and upload it)",
            loc,
        )


def synthesize(
    preset_name: str, sessions: int, seed: int, loc: tuple[str | int, ...] = ("body",)
) -> Any:
    """Generate a synthetic trace (after `check_synth_size`)."""
    from codesign.workload.synth import generate, preset

    check_synth_size(preset_name, sessions, seed, loc)
    return generate(preset(preset_name).model_copy(update={"sessions": sessions, "seed": seed}))


@router.post("/traces/synth", status_code=201, responses=errors(401, 403, 413, 422))
async def synth_trace(
    body: SynthIn,
    response: Response,
    st: AppState = Depends(state),
    who: Principal = Depends(write_access),
) -> dict[str, Any]:
    """Generate a synthetic agent trace from a preset (seeded, deterministic) and store it;
    201 + the trace + ``Location``. Unknown preset → 422 listing the presets."""
    trace = await run_in_threadpool(synthesize, body.preset, body.sessions, body.seed)
    name = body.name or f"{body.preset}-{body.sessions}-seed{body.seed}"
    rec = await run_in_threadpool(store_trace, st.S, trace, name, who.owner)
    response.headers["Location"] = f"/v1/traces/{rec.id}"
    return trace_out(rec)


def _columns(stats: bool) -> list[Any]:
    skip = ("data",) if stats else ("data", "stats")
    return [c for c in TraceRecord.__table__.columns if c.name not in skip]


@router.get("/traces", response_model=Page, responses=errors(401))
def list_traces(
    limit: int = Query(50, ge=1, le=1000),
    after: int | None = Query(None, ge=0, le=MAX_ID, description="the `next` of the previous page"),
    st: AppState = Depends(state),
    _: Principal = Depends(read_access),
) -> dict[str, Any]:
    """Stored traces, newest first, without statistics (keyset pagination: pass ``next``
    as ``after``)."""
    q = select(*_columns(stats=False)).order_by(TraceRecord.id.desc()).limit(limit + 1)
    if after is not None:
        q = q.where(TraceRecord.id < after)
    with st.S() as s:
        rows = list(s.execute(q))
    nxt = rows[limit - 1].id if len(rows) > limit else None
    return {"items": [trace_out(r) for r in rows[:limit]], "next": nxt}


@router.get("/traces/{trace_id}", responses=errors(401, 404))
def show_trace(
    trace_id: TraceId, st: AppState = Depends(state), _: Principal = Depends(read_access)
) -> dict[str, Any]:
    """One trace with its statistics (as ``codesign trace stats --json``)."""
    with st.S() as s:
        row = s.execute(select(*_columns(stats=True)).where(TraceRecord.id == trace_id)).first()
    if row is None:
        raise Missing(f"trace {trace_id} not found")
    return trace_out(row, stats=True)


@router.delete("/traces/{trace_id}", status_code=204, responses=errors(401, 403, 404, 409))
def delete_trace(
    trace_id: TraceId, st: AppState = Depends(state), _: Principal = Depends(write_access)
) -> Response:
    """Delete a trace. A trace that a queued or running job uses → 409 (cancel the job or
    wait for it)."""
    with st.S() as s:
        if s.scalar(select(TraceRecord.id).where(TraceRecord.id == trace_id)) is None:
            raise Missing(f"trace {trace_id} not found")
        active = s.execute(
            select(Job.id, Job.spec).where(Job.status.in_(("queued", "running")))
        ).all()
        users = [
            jid
            for jid, spec in active
            if isinstance(spec, dict)
            and isinstance(spec.get("workload"), dict)
            and trace_id_of(spec["workload"].get("trace")) == trace_id
        ]
        if users:
            raise Conflict(
                f"trace {trace_id} is used by queued or running job(s) "
                f"{', '.join(map(str, users))}; cancel them or wait for them to finish"
            )
        s.execute(delete(TraceRecord).where(TraceRecord.id == trace_id))
        s.commit()
    return Response(status_code=204)
