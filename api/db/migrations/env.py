"""Alembic environment: runs on the connection `api.db.migrate.upgrade` passes in (or on
``sqlalchemy.url``); batch mode on SQLite; the version table is ``codesign_alembic_version``
so it cannot collide with Optuna's ``alembic_version``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from api.db.models import VERSION_TABLE, Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)
