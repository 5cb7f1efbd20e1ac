"""Alembic environment for the ledger.

klingwatch runs it in code (:func:`klingwatch.store.database.migrate`), handing over an open
connection in ``config.attributes["connection"]``, inside a transaction that already holds the
migration lock. A developer writing a new revision can run Alembic against a scratch database
with ``-x url=sqlite:///scratch.db``; there is no alembic.ini and no offline (--sql) mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from klingwatch.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("klingwatch migrations run online only")
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    from klingwatch.store.database import create_ledger_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise RuntimeError("pass the database as: alembic -x url=sqlite:///scratch.db ...")
    engine = create_ledger_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


_main()
