"""Plumbing every command shares: options, settings, the ledger, the client, output.

A command module typically reads::

    @app.command("tasks")
    def tasks_command(db: str | None = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
        with open_ledger(db) as ledger:
            print_json([...]) if as_json else print_table(...)

Errors are not caught here: the root command (:mod:`klingwatch.cli.exits`) turns every
:class:`~klingwatch.errors.KlingwatchError` into one ``error: ...`` line (exit code 3), and
:func:`run_engine` turns Ctrl-C into one ``interrupted`` line (exit code 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Coroutine, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

from klingwatch.cli.exits import CARRIES_ON, Interrupted
from klingwatch.clock import RealClock, format_duration
from klingwatch.environment import absolute_db_url
from klingwatch.monitor.download_worker import DownloadWorker
from klingwatch.monitor.service import Monitor
from klingwatch.operations import client_from as make_client
from klingwatch.operations import clock_from
from klingwatch.settings import Settings
from klingwatch.store import Ledger

__all__ = [
    "BATCH_OPTION",
    "DB_OPTION",
    "JSON_OPTION",
    "WIDE_OPTION",
    "clock_from",
    "console",
    "format_age",
    "format_ms",
    "format_time",
    "load_settings",
    "make_client",
    "open_ledger",
    "print_json",
    "print_table",
    "run_async",
    "run_engine",
    "wall_time",
]

_T = TypeVar("_T")

DB_OPTION: Any = typer.Option(
    None,
    "--db",
    help="Ledger URL (SQLAlchemy), e.g. sqlite:///klingwatch.db. Default: KLINGWATCH_DB, else "
    "klingwatch.db in the working directory.",
    show_default=False,
)
BATCH_OPTION: Any = typer.Option(None, "--batch", "-b", help="Only tasks of this batch.")
JSON_OPTION: Any = typer.Option(False, "--json", help="Print JSON instead of a table.")
WIDE_OPTION: Any = typer.Option(
    False, "--wide", help="Every column, nothing cut short (full ids), however wide."
)


def load_settings(db: str | None = None, **flags: Any) -> Settings:
    """Settings from flags (``None`` = not given), environment, ``.env`` and ``klingwatch.toml``."""
    return Settings.load(db=db, **flags)


@contextlib.contextmanager
def open_ledger(db: str | None = None, *, settings: Settings | None = None) -> Iterator[Ledger]:
    """The ledger at ``db`` (else the settings' ``KLINGWATCH_DB``), closed on exit."""
    settings = settings or load_settings(db)
    # A relative SQLite file is made absolute, like every other path the CLI is given.
    ledger = Ledger.open(absolute_db_url(db) if db else settings.db, clock=clock_from(settings))
    try:
        yield ledger
    finally:
        ledger.close()


def run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a command's async core to completion (one event loop per command)."""
    return asyncio.run(coro)


async def run_engine(monitor: Monitor, *, interrupted: str = CARRIES_ON) -> None:
    """Run ``monitor`` (built with ``handle_signals=False``) until it stops by itself.

    The first Ctrl-C or SIGTERM lets the current step finish (the ledger is written in whole
    transactions), a second one stops at once; either way :class:`Interrupted` is raised with
    the line ``interrupted`` to print. Download workers are closed in every case (their partial
    files are resumed next time).
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    caught: list[int] = []

    def on_signal(sig: int) -> None:
        if caught and main is not None:
            main.cancel()
        caught.append(sig)
        monitor.stop()

    installed: list[int] = []
    for sig in (int(signal.SIGINT), int(signal.SIGTERM)):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            continue
        installed.append(sig)
    try:
        await monitor.run()
    except asyncio.CancelledError:
        if not caught:
            raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await DownloadWorker.close_all(monitor.workers)
    if caught:
        raise Interrupted(caught[0], interrupted)


def wall_time() -> float:
    """Now, Unix seconds (what ages shown to a person are measured from)."""
    return RealClock().time()


def console() -> Console:
    """A console on stdout (Rich decides about colour and width)."""
    return Console()


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_table(
    columns: Sequence[str | Column],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    wide: bool = False,
) -> None:
    """A Rich table on stdout; ``None`` cells show as ``-``.

    ``columns`` are headers or :class:`rich.table.Column` s (to say which may wrap). The table
    fits the terminal; ``wide`` prints it at its natural width instead, nothing cut short (for
    full ids: ``--wide``).
    """
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    out = Console(width=max(table_width(table), console().width)) if wide else console()
    out.print(table)


def table_width(table: Table) -> int:
    """The width ``table`` takes with no cell cut or wrapped."""
    return Console(width=100_000).measure(table).maximum


def format_time(ts: float | None) -> str | None:
    """Unix seconds as local ``YYYY-MM-DD HH:MM:SS`` (``None`` stays ``None``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def format_ms(ms: int | None) -> str | None:
    """Kling's epoch milliseconds as local time."""
    return None if ms is None else format_time(ms / 1000.0)


def format_age(seconds: float | None) -> str | None:
    """``95`` -> ``1m35s``; ``7300`` -> ``2h01m``; ``None`` stays ``None``."""
    return None if seconds is None else format_duration(seconds)
