"""``klingwatch watch``: run the engine and show every change as it happens."""

from __future__ import annotations

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    BATCH_OPTION,
    DB_OPTION,
    clock_from,
    console,
    load_settings,
    make_client,
    open_ledger,
    run_async,
    run_engine,
)
from klingwatch.cli.live import Reporter, make_reporter
from klingwatch.cli.submit import make_submitter
from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor.download_worker import DownloadWorker
from klingwatch.monitor.poller import SweepReport
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.stuck import StuckPolicy
from klingwatch.settings import Settings
from klingwatch.store import Change, Ledger
from klingwatch.store.async_ledger import AsyncLedger


def build_monitor(
    settings: Settings,
    *,
    client: KlingClient,
    ledger: Ledger,
    clock: Clock,
    reporter: Reporter,
    batch: str | None = None,
    until_done: bool = False,
) -> Monitor:
    """The engine as ``watch`` runs it, configured from the settings.

    The place to plug further workers in (``submitter=...``, ``workers=[downloads, ...]``).
    """

    async def on_change(changes: list[Change]) -> None:
        reporter.changes(changes)

    def on_sweep(_: SweepReport) -> None:
        reporter.tick()

    # Queued tasks are sent as slots free up. With --batch the poller reads only that batch, so
    # slots held by other batches could never be seen to free: no sending then.
    aledger = AsyncLedger(ledger)
    submitter = (
        None if batch else make_submitter(settings, client=client, ledger=aledger, clock=clock)
    )
    return Monitor(
        client=client,
        ledger=aledger,
        clock=clock,
        batch=batch,
        stuck=StuckPolicy(threshold=settings.stuck_after),
        submitter=submitter,
        workers=[DownloadWorker.from_settings(settings, ledger=aledger, clock=clock, batch=batch)],
        on_change=on_change,
        on_sweep=on_sweep,
        until_done=until_done,
        handle_signals=False,  # run_engine's: Ctrl-C is one line and exit code 130
    )


async def _watch(settings: Settings, batch: str | None, until_done: bool, as_json: bool) -> str:
    clock = clock_from(settings)
    with open_ledger(settings.db, settings=settings) as ledger:
        if batch is not None and batch not in {b.name for b in ledger.batches()}:
            raise typer.BadParameter(
                f"no batch named {batch!r} in the ledger", param_hint="--batch"
            )
        async with make_client(settings, clock=clock) as client:
            with make_reporter(
                ledger, json_lines=as_json, batch=batch, console=console(), clock=clock
            ) as reporter:
                monitor = build_monitor(
                    settings,
                    client=client,
                    ledger=ledger,
                    clock=clock,
                    reporter=reporter,
                    batch=batch,
                    until_done=until_done,
                )
                await run_engine(monitor)
        counts = ledger.counts(batch=batch)
    summary = "  ".join(f"{status.value} {n}" for status, n in counts.items() if n)
    return f"nothing left to follow: {summary or 'no tasks'}"


@app.command("watch")
def watch_command(
    batch: str | None = BATCH_OPTION,
    until_done: bool = typer.Option(
        False, "--until-done", help="Stop when no task is in flight or waiting to be sent."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per change."),
    db: str | None = DB_OPTION,
) -> None:
    """Run the engine: follow every task in flight on Kling and print each status change.

    Ctrl-C (or SIGTERM) finishes the current sweep and stops (exit code 130; a second Ctrl-C
    stops at once); run it again to carry on.
    """
    settings = load_settings(db)
    summary = run_async(_watch(settings, batch, until_done, as_json))
    typer.echo(summary, err=True)
