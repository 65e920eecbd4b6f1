"""Custom chips and systems (`HardwareRecord`): validated exactly like the YAML catalog,
registered into this process's catalog after every change (`refresh_catalog`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth import Principal
from api.db.models import HardwareRecord, utcnow
from api.db.traces import validate_hardware
from api.deps import AppState, read_access, state, write_access
from api.errors import Conflict, Invalid, Missing
from api.routers.catalog import (
    MAX_NAME,
    HardwareName,
    Kind,
    _is_custom,
    refresh_catalog,
    reject_nonfinite,
)
from api.schemas import errors

log = logging.getLogger("codesign.api")

router = APIRouter(tags=["hardware"])


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
