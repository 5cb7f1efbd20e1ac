"""Connecting and migrating (klingwatch.store.database): schema, settings, and clear failures."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from klingwatch.store import (
    BadLedgerURL,
    Ledger,
    LedgerError,
    LedgerUnavailable,
    MissingFolder,
    NewTask,
    SchemaMismatch,
)
from klingwatch.store.database import create_ledger_engine, migrate
from klingwatch.store.schema import metadata


def test_the_migrated_schema_matches_the_tables_in_code(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()
    engine = create_ledger_engine(ledger_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
    finally:
        engine.dispose()
    assert differences == []


def test_an_up_to_date_database_opens_without_migrating(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        ledger.add_tasks("b", [NewTask("text2video", {"prompt": "p"}, "e1")])
    engine = create_ledger_engine(ledger_url)
    try:
        assert migrate(engine, ledger_url) is False
    finally:
        engine.dispose()
    with Ledger.open(ledger_url) as again:
        assert again.task("e1") is not None


def test_sqlite_ledger_uses_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'k.db'}") as ledger:
        assert ledger.dialect == "sqlite"
        engine = create_ledger_engine(ledger.url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        engine.dispose()


def test_open_without_a_url_uses_klingwatch_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLINGWATCH_DB", f"sqlite:///{tmp_path / 'from-env.db'}")
    with Ledger.open() as ledger:
        assert ledger.url.endswith("from-env.db")
    assert (tmp_path / "from-env.db").exists()


def test_open_without_anything_uses_klingwatch_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Ledger.open().close()
    assert (tmp_path / "klingwatch.db").exists()


def test_a_library_ledger_reads_no_env_file_nor_klingwatch_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Those are the command line's (it passes the URL its settings chose); a broken one must not
    # break a program that only opens a ledger.
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"KLINGWATCH_DB=sqlite:///{tmp_path / 'from-dotenv.db'}\n")
    (tmp_path / "klingwatch.toml").write_text("not = = toml [\n")
    with Ledger.open() as ledger:
        assert ledger.url == f"sqlite:///{tmp_path / 'klingwatch.db'}"
    assert not (tmp_path / "from-dotenv.db").exists()


def test_a_relative_sqlite_file_is_opened_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLINGWATCH_DB", "sqlite:///relative.db")
    with Ledger.open() as ledger:
        assert ledger.url == f"sqlite:///{tmp_path / 'relative.db'}"


def test_an_in_memory_ledger_works_for_throwaway_use() -> None:
    with Ledger.open("sqlite://") as ledger:
        ledger.add_tasks("b", [NewTask("text2video", {"prompt": "p"}, "e1")])
        assert len(ledger.tasks()) == 1


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "not a SQLAlchemy URL"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+nosuchdriver://u@h/db", "driver 'postgresql+nosuchdriver'"),
        ("sqlite://kw.db", "a SQLite URL has no host: write sqlite:///kw.db (three slashes)"),
        ("kw.db", "not a SQLAlchemy URL (a SQLite file is sqlite:///kw.db)"),
    ],
)
def test_a_bad_url_is_one_clear_line(url: str, says: str) -> None:
    with pytest.raises(BadLedgerURL) as caught:
        Ledger.open(url)
    message = str(caught.value)
    assert says in message
    assert "KLINGWATCH_DB" in message
    assert "\n" not in message


def test_a_password_never_appears_in_errors() -> None:
    with pytest.raises(BadLedgerURL) as caught:
        Ledger.open("mysql://me:hunter2@db.example/x")
    assert "hunter2" not in str(caught.value)
    assert "me:***@db.example" in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_reported_not_raised_raw() -> None:
    url = f"postgresql+psycopg://kw:secret@127.0.0.1:{_closed_port()}/kw?connect_timeout=2"
    with pytest.raises(LedgerUnavailable) as caught:
        Ledger.open(url)
    message = str(caught.value)
    assert "127.0.0.1" in message
    assert "secret" not in message
    assert "\n" not in message


def test_an_unopenable_sqlite_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "k.db").mkdir()  # a folder where the file should be
    with pytest.raises(LedgerUnavailable, match="unable to open database file"):
        Ledger.open(f"sqlite:///{tmp_path / 'k.db'}")


def test_a_sqlite_file_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(MissingFolder, match=f"the folder {missing} of the ledger"):
        Ledger.open(f"sqlite:///{missing / 'k.db'}")
    assert not missing.exists()  # folders are not made up: a typo stays visible


def test_a_database_from_a_newer_klingwatch_is_refused(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaMismatch, match="newer than this klingwatch knows; upgrade"):
        Ledger.open(ledger_url)


def test_a_foreign_database_is_not_touched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'theirs.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE tasks (id INTEGER PRIMARY KEY, what TEXT)"))
    engine.dispose()
    with pytest.raises(SchemaMismatch, match="no klingwatch schema version"):
        Ledger.open(url)


def test_a_postgresql_url_without_psycopg_says_what_to_install(tmp_path: Path) -> None:
    # A fresh interpreter in which psycopg cannot be imported, as on a machine without it.
    script = textwrap.dedent(
        """
        import sys
        class NoPsycopg:
            def find_spec(self, name, path=None, target=None):
                if name == "psycopg" or name.startswith("psycopg."):
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, NoPsycopg())
        from klingwatch.store import Ledger, MissingDriver
        try:
            Ledger.open("postgresql+psycopg://u@127.0.0.1/x")
        except MissingDriver as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'klingwatch[postgres]'" in done.stdout


def test_every_store_error_is_a_ledger_error() -> None:
    for error in (BadLedgerURL, LedgerUnavailable, SchemaMismatch):
        assert issubclass(error, LedgerError)
