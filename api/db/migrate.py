"""Alembic migrations, run programmatically: ``upgrade(engine)`` brings a database to the
newest schema (the server and the worker call it at start; it is idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from api.db.models import VERSION_TABLE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def open_database(url: str | None = None, migrate: bool = True) -> tuple[Engine, Any]:
    """An engine for ``url`` (default: the configured database), migrated to the newest
    schema, and its session factory: what the API, the workers and the CLI each open."""
    from api.db.engine import create_db_engine
    from api.db.jobs import session_factory

    engine = create_db_engine(url)
    if migrate:
        upgrade(engine)
    return engine, session_factory(engine)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        from sqlalchemy import text

        row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
        return row[0] if row else None
