"""Alembic migrations for songqueue's schema (``service/store/tables.py`` is the target)."""
