"""Alembic migrations on real SQLite and PostgreSQL: upgrade creates the service's tables
under names that cannot collide with Optuna's, an Optuna storage can live in the same
database, and downgrade removes only the service's tables."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from service_helpers import database
from sqlalchemy import inspect

from api.db.engine import create_db_engine
from api.db.migrate import current_revision, downgrade, upgrade
from api.db.models import VERSION_TABLE, Base

SERVICE_TABLES = {"cs_jobs", "cs_candidates", "cs_job_events", "cs_traces", "cs_hardware"}
SERVICE_TABLES |= {"cs_api_keys"}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_migrations_coexist_with_an_optuna_storage(kind: str, tmp_path: Path, request) -> None:
    pg = request.getfixturevalue("postgres_url") if kind == "postgresql" else None
    with database(kind, tmp_path, pg) as url:
        engine = create_db_engine(url)
        # an Optuna storage first, in the same database
        storage = optuna.storages.RDBStorage(url)
        optuna.create_study(storage=storage, study_name="s").optimize(
            lambda t: t.suggest_float("x", 0, 1), 2
        )
        optuna_tables = set(inspect(engine).get_table_names())
        assert {"studies", "trials", "alembic_version"} <= optuna_tables

        upgrade(engine)
        upgrade(engine)  # idempotent
        tables = set(inspect(engine).get_table_names())
        assert SERVICE_TABLES | {VERSION_TABLE} <= tables
        assert {t.name for t in Base.metadata.sorted_tables} == SERVICE_TABLES
        assert not (SERVICE_TABLES | {VERSION_TABLE}) & optuna_tables
        assert current_revision(engine) == "0001"
        assert len(optuna.load_study(study_name="s", storage=url).trials) == 2

        downgrade(engine)
        left = set(inspect(engine).get_table_names())
        assert not SERVICE_TABLES & left and optuna_tables <= left
        storage.remove_session()
        storage.engine.dispose()
        engine.dispose()
