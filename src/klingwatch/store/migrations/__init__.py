"""Alembic migrations for the ledger, run in code by :func:`klingwatch.store.database.migrate`."""
