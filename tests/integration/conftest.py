"""Fixtures of the in-process API route tests (see api_client_helpers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client_helpers import api_client
from fastapi.testclient import TestClient
from service_helpers import database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with database(request.param, tmp_path, pg) as url:
        yield url


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with api_client(f"sqlite:///{tmp_path / 't.db'}") as c:
        yield c
