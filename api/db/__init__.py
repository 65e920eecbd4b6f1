"""Database access for the service (SQLAlchemy 2): SQLite embedded, PostgreSQL in production."""

from api.db.engine import create_db_engine, default_database_url

__all__ = ["create_db_engine", "default_database_url"]
