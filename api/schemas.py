"""Response bodies shared by the routers (what the OpenAPI schema documents)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel

MAX_ID = 2**63 - 1  # ids are 64-bit: larger numbers are 422, not a database overflow
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def iso(t: Any) -> str | None:
    """A naive-UTC database time as ISO 8601 with the Z suffix."""
    return None if t is None else t.isoformat() + "Z"


class ErrorBody(BaseModel):
    detail: str


class ValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationBody(BaseModel):
    """422: FastAPI's shape, also for specs the search rejects."""

    detail: list[ValidationItem]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry documenting the error codes a route can answer."""
    return {c: {"model": ValidationBody if c == 422 else ErrorBody} for c in codes}


class Page(BaseModel):
    items: list[dict[str, Any]]
    next: int | None = None


def after_query(description: str = "the `next` of the previous page") -> Any:
    return Query(None, ge=0, le=MAX_ID, description=description)
