"""``klingwatch track``: adopt tasks created elsewhere (a web console, another script)."""

from __future__ import annotations

from typing import Annotated

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import DB_OPTION, load_settings, make_client, open_ledger, run_async
from klingwatch.kling.errors import TaskNotFound
from klingwatch.kling.products import get_product
from klingwatch.monitor.observe import observe_task
from klingwatch.settings import Settings
from klingwatch.store import Source

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
    """Adopt tasks created elsewhere: each is read once on Kling (to check that it exists) and
    recorded in the ledger, where `klingwatch watch` follows it to the end."""
    p = get_product(product)
    settings = load_settings(db)
    missing = run_async(_track(task_ids, p.name, p.family.value, batch, db, settings))
    if missing:
        raise typer.Exit(1)


async def _track(
    task_ids: list[str], product: str, family: str, batch: str, db: str | None, settings: Settings
) -> list[str]:
    """Adopt each task that exists; return the ids Kling does not know."""
    missing: list[str] = []
    with open_ledger(db, settings=settings) as ledger:
        async with make_client(settings) as client:
            ledger.ensure_batch(batch)
            for task_id in dict.fromkeys(task_ids):
                try:
                    task = await client.get(product, task_id)
                except TaskNotFound:
                    typer.echo(f"{task_id}: Kling has no {product} task with this id", err=True)
                    missing.append(task_id)
                    continue
                local_id = ledger.adopt(batch, product, task.id, family=family)
                ledger.apply(
                    observe_task(task, source=Source.GET, at=client.clock.time(), local_id=local_id)
                )
                typer.echo(f"{task.id}  {task.status.value}  tracked in batch {batch!r}")
    return missing
