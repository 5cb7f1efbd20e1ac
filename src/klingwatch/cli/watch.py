"""``klingwatch watch``: run the engine and show every change as it happens."""

from __future__ import annotations

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    BATCH_OPTION,
    DB_OPTION,
    console,
    load_settings,
    run_async,
    run_engine,
)
from klingwatch.cli.live import make_reporter
from klingwatch.operations import Operations
from klingwatch.settings import Settings


async def _watch(settings: Settings, batch: str | None, until_done: bool, as_json: bool) -> str:
    async with Operations.open(settings, need_client=True) as ops:
        if batch is not None and batch not in {b.name for b in await ops.ledger.batches()}:
            raise typer.BadParameter(
                f"no batch named {batch!r} in the ledger", param_hint="--batch"
            )
        async with make_reporter(
            ops.ledger, json_lines=as_json, batch=batch, console=console(), clock=ops.clock
        ) as reporter:
            # Queued tasks are sent as slots free up; with --batch the poller reads only that
            # batch (and so sends nothing: slots held by others could never be seen to free).
            engine = ops.engine(
                batch=batch,
                until_done=until_done,
                on_change=reporter.changes,
                on_sweep=lambda _: reporter.tick(),
            )
            await run_engine(engine)
        counts = await ops.ledger.counts(batch=batch)
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
