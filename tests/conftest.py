"""Fixtures shared by every test module.

Tests are hermetic: the developer's own Kling credentials and klingwatch settings never leak in.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Settings the test harness itself uses; everything else named KLING*/KLINGWATCH_* is cleared.
_KEEP = {"KLINGWATCH_TEST_PG_URL"}


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KLING_", "KLINGWATCH_")) and name not in _KEEP:
            monkeypatch.delenv(name)


# -- ledger databases (klingwatch.store): one real SQLite file, one real PostgreSQL database ------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema on the server in KLINGWATCH_TEST_PG_URL (the URL sets
    its search_path, so everything the test creates lands there), dropped afterwards.

    ``make test`` starts a throwaway server and sets the variable (tests/services.py). Without it
    the test fails, saying so: a PostgreSQL test is never skipped.
    """
    server = os.environ.get("KLINGWATCH_TEST_PG_URL")
    if not server:
        pytest.fail(
            "KLINGWATCH_TEST_PG_URL is not set: run the tests with `make test` (it starts a "
            "throwaway PostgreSQL), or set it to postgresql+psycopg://user@host:port/db",
            pytrace=False,
        )
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"kw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text("SET lock_timeout = '10s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger URL: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
