"""Request dependencies: the application state and the caller's access."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.auth import KeyChecker, Principal
from api.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    S: sessionmaker[Session]
    keys: KeyChecker


async def state(request: Request) -> AppState:
    return request.app.state.codesign


def _token(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


async def read_access(
    st: AppState = Depends(state),
    authorization: str | None = Header(None, include_in_schema=False),
    x_api_key: str | None = Header(None, include_in_schema=False),
) -> Principal:
    return st.keys.principal(_token(authorization, x_api_key), "read")


async def write_access(
    st: AppState = Depends(state),
    authorization: str | None = Header(None, include_in_schema=False),
    x_api_key: str | None = Header(None, include_in_schema=False),
) -> Principal:
    return st.keys.principal(_token(authorization, x_api_key), "write")
