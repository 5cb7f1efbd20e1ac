"""``klingwatch track``: adopt tasks created elsewhere (a web console, another script)."""

from __future__ import annotations

from typing import Annotated

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import DB_OPTION, load_settings, run_async
from klingwatch.kling.products import get_product
from klingwatch.operations import Operations
from klingwatch.settings import Settings

#: Batch of adopted tasks when ``--batch`` is not given.
DEFAULT_BATCH = "tracked"


@app.command("track")
def track_command(
    task_ids: Annotated[
        list[str], typer.Argument(help="Kling task ids to watch.", show_default=False)
    ],
    product: str = typer.Option(
        ..., "--product", "-p", help="The product the tasks were created with, e.g. text2video."
    ),
    batch: str = typer.Option(DEFAULT_BATCH, "--batch", "-b", help="Batch to put them in."),
    db: str | None = DB_OPTION,
) -> None:
    """Adopt tasks created elsewhere: each is read on Kling (to check that it exists; many per
    request) and recorded in the ledger, where `klingwatch watch` follows it to the end."""
    p = get_product(product)
    settings = load_settings(db)
    missing = run_async(_track(task_ids, p.name, batch, settings))
    if missing:
        raise typer.Exit(1)


async def _track(task_ids: list[str], product: str, batch: str, settings: Settings) -> list[str]:
    """Adopt each task that exists; return the ids Kling does not know."""
    async with Operations.open(settings) as ops:
        result = await ops.track(product, task_ids, batch=batch)
    for task_id in result.missing:
        typer.echo(f"{task_id}: Kling has no {product} task with this id", err=True)
    for record in result.tracked:
        typer.echo(f"{record.task_id}  {record.status.value}  tracked in batch {batch!r}")
    return result.missing
