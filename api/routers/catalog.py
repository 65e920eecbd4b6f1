"""The catalog: systems, chips (built-in plus custom) and models; the checks other routers
share (`check_model`, `reject_nonfinite`) and `refresh_catalog`, which keeps this process's
hardware catalog in step with the custom hardware stored in the database."""

from __future__ import annotations

import logging
import math
import threading
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi import Path as FastPath
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.auth import Principal
from api.db.models import HardwareRecord
from api.db.traces import sync_catalog
from api.deps import AppState, read_access, state
from api.errors import Invalid
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


def check_model(model: str, where: tuple[str, ...]) -> None:
    if model.strip().lower() not in _model_ids():
        raise Invalid(
            f"unknown model {model!r}: over the API a model is a catalog id (GET /v1/models)",
            where,
        )


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
