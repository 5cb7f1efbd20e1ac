"""Connecting to the ledger's database and bringing its schema to head.

One function builds the SQLAlchemy engine for any ledger URL (:func:`create_ledger_engine`), one
migrates (:func:`migrate`). SQLite gets the settings a durable single-file ledger wants (WAL,
foreign keys, a busy timeout, ``synchronous=NORMAL``) and writes that take the file's write lock
at ``BEGIN`` (``BEGIN IMMEDIATE``), so a read-modify-write never races another process.
PostgreSQL URLs use psycopg 3 (``postgresql://`` means ``postgresql+psycopg://``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from klingwatch.store.errors import (
    BadLedgerURL,
    LedgerUnavailable,
    MissingDriver,
    MissingFolder,
    SchemaMismatch,
    redact,
)

__all__ = [
    "MIGRATIONS_DIR",
    "SQLITE_BUSY_TIMEOUT_MS",
    "WRITE_OPTION",
    "create_ledger_engine",
    "describe",
    "migrate",
]

logger = logging.getLogger(__name__)

#: Where the Alembic environment and revisions live (inside the package; no alembic.ini).
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "klingwatch_write"
# Any constant works; it only has to be the same for every klingwatch replica.
_PG_MIGRATION_LOCK = 0x6B6C696E67


def create_ledger_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url`` (SQLite or PostgreSQL), configured for the ledger.

    Raises :class:`BadLedgerURL` for anything else and :class:`MissingDriver` for a PostgreSQL
    URL without psycopg. Nothing is connected yet.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadLedgerURL(url, _not_a_url(url)) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_driver_name() == "psycopg":
            try:
                import psycopg  # noqa: F401
            except ImportError as exc:
                raise MissingDriver(url) from exc
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except (NoSuchModuleError, ImportError) as exc:
            raise BadLedgerURL(url, f"driver {parsed.drivername!r} is not available") from exc
    raise BadLedgerURL(url, f"unsupported database {backend!r} (use sqlite or postgresql)")


def _not_a_url(url: str) -> str:
    if "://" not in url and url.endswith((".db", ".sqlite", ".sqlite3")):
        return f"not a SQLAlchemy URL (a SQLite file is sqlite:///{url})"
    return "not a SQLAlchemy URL"


def _sqlite_engine(url: str, parsed: URL) -> Engine:
    if parsed.host or parsed.port or parsed.username:
        # sqlite://kw.db: two slashes make "kw.db" a host name, which SQLite has no use for.
        file = "/".join(filter(None, [parsed.host, parsed.database]))
        raise BadLedgerURL(
            url,
            f"a SQLite URL has no host: write sqlite:///{file} (three slashes) for a file "
            "relative to the working directory, four for an absolute path",
        )
    memory = parsed.database in (None, "", ":memory:")
    if not memory and parsed.database and not parsed.database.startswith("file:"):
        folder = Path(parsed.database).expanduser().absolute().parent
        if not folder.is_dir():
            raise MissingFolder(url, str(folder))
    kwargs: dict[str, Any] = {}
    if memory:
        # One shared connection, or every checkout would see its own empty database.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise BadLedgerURL(url, f"driver {parsed.drivername!r} is not available") from exc
    except ArgumentError as exc:  # the dialect refused the URL's shape
        raise BadLedgerURL(url, describe(exc)) from exc

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def describe(exc: BaseException) -> str:
    """The first line of what the driver said, for one-line error messages."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(inner).strip().splitlines()
    return lines[0] if lines else type(inner).__name__


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def migrate(engine: Engine, url: str) -> bool:
    """Bring the database's schema to head; ``True`` when any revision ran.

    An up-to-date database costs one query. Concurrent openers are serialized (an advisory lock
    on PostgreSQL, the write lock on SQLite), so replicas starting together migrate once.
    """
    cfg = _config()
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return False
                _check_upgradable(conn, script, current, url)
                logger.info("migrating the ledger at %s from %s to %s", redact(url), current, head)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                return True
    except DBAPIError as exc:
        raise LedgerUnavailable(url, describe(exc)) from exc


def _check_upgradable(
    conn: Connection, script: ScriptDirectory, current: str | None, url: str
) -> None:
    if current is None:
        if inspect(conn).has_table("tasks"):
            raise SchemaMismatch(
                url, "it has a 'tasks' table but no klingwatch schema version; use another database"
            )
        return
    try:
        script.get_revision(current)
    except CommandError as exc:
        raise SchemaMismatch(
            url,
            f"its schema revision {current!r} is newer than this klingwatch knows; "
            "upgrade klingwatch",
        ) from exc
