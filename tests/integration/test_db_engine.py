"""The service database engines against real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from api.db import create_db_engine, default_database_url
from codesign.errors import SpecError


def test_sqlite_file_uses_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'codesign.db'}"
    engine = create_db_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "nested" / "codesign.db").exists()
    engine.dispose()


def test_default_url_is_sqlite_under_the_data_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CODESIGN_DATABASE_URL", raising=False)
    monkeypatch.setenv("CODESIGN_DATA_DIR", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path / 'codesign.db'}"
    monkeypatch.setenv("CODESIGN_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert default_database_url() == "postgresql+psycopg://u@h/db"


def test_bad_urls_get_clear_errors() -> None:
    with pytest.raises(SpecError, match="not a database URL"):
        create_db_engine("not a url")
    with pytest.raises(SpecError, match="unsupported database 'mysql'"):
        create_db_engine("mysql://root@localhost/test")


@pytest.mark.postgres
def test_postgresql_round_trip(postgres_url: str) -> None:
    engine = create_db_engine(postgres_url)
    table = f"codesign_probe_{uuid.uuid4().hex[:8]}"
    try:
        with engine.begin() as conn:
            major = conn.execute(text("SHOW server_version_num")).scalar()
            assert int(major) >= 120000
            conn.execute(text(f"CREATE TABLE {table} (id serial PRIMARY KEY, v double precision)"))
            conn.execute(text(f"INSERT INTO {table} (v) VALUES (:v)"), [{"v": 1.5}, {"v": 2.5}])
        with engine.connect() as conn:
            assert conn.execute(text(f"SELECT sum(v) FROM {table}")).scalar() == 4.0
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
