"""Persistence: SQLAlchemy Core tables, engines, queries and Alembic migrations."""
