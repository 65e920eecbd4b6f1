"""Engines for the service database.

SQLite is the embedded default: one file under the data directory, WAL journal (readers do
not block the writer), a busy timeout instead of immediate "database is locked" errors, and
foreign keys on. PostgreSQL is selected with ``CODESIGN_DATABASE_URL``, e.g.
``postgresql+psycopg://user@host:5432/codesign``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from codesign.errors import SpecError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def data_dir() -> Path:
    """``$CODESIGN_DATA_DIR`` or ``~/.codesign``: where the embedded database lives."""
    return Path(os.environ.get("CODESIGN_DATA_DIR", Path.home() / ".codesign")).expanduser()


def default_database_url() -> str:
    url = os.environ.get("CODESIGN_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'codesign.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def create_db_engine(url: str | None = None, echo: bool = False) -> Engine:
    """An engine for ``url`` (default: ``default_database_url()``), tuned per backend."""
    url = url or default_database_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SpecError(
            f"not a database URL: {url!r} (expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    raise SpecError(f"unsupported database {backend!r}: use sqlite or postgresql")
