"""``klingwatch retry``: queue finished tasks again, as new tasks linked to the ones they retry.

A retry is a *new* task: a new ``external_task_id`` (``<old>-r1``, ``-r2``, ...) so Kling sees a new
request, the same request body, and ``retry_of`` pointing at the task it retries (``show`` prints
the lineage). A task that was already retried is not retried again by ``--failed``/``--rejected``
(retry the newest attempt instead), so running the same command twice queues nothing twice.
A succeeded task is retried only with ``--force``: the retry is a new task that Kling bills again
(the rule is :func:`klingwatch.monitor.retries.check_retry`, the same for the API).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    DB_OPTION,
    JSON_OPTION,
    console,
    load_settings,
    print_json,
    run_async,
)
from klingwatch.cli.common import print_table as _print_table
from klingwatch.operations import Operations, RetryResult, TaskDetail
from klingwatch.settings import Settings
from klingwatch.store import TaskRecord

__all__ = ["lineage_lines"]


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def lineage_lines(detail: TaskDetail) -> list[str]:
    """Lines for ``show``: ``retries #3 kw-x (failed: reason)`` / ``retried by #9 kw-x-r1``."""

    def label(t: TaskRecord) -> str:
        why = f": {t.status_msg}" if t.status_msg else ""
        return f"#{t.local_id} {t.external_task_id} ({t.status.value}{why})"

    lines = [f"retries {label(t)}" for t in reversed(detail.retries_of)]
    lines += [f"retried by {label(t)}" for t in detail.retried_by]
    return lines


async def _retry(
    settings: Settings,
    batch: str | None,
    failed: bool,
    rejected: bool,
    ids: list[str],
    force: bool,
) -> RetryResult:
    async with Operations.open(settings, client=False) as ops:
        return await ops.retry(batch=batch, failed=failed, rejected=rejected, ids=ids, force=force)


IDS_OPTION: Any = typer.Option(
    None,
    "--ids",
    help="Retry these tasks (local, external or Kling ids): --ids 3,4 or --ids 3 --ids 4.",
)


FORCE_OPTION: Any = typer.Option(
    False,
    "--force",
    help="Also retry succeeded tasks named with --ids (each retry is a new task, paid again).",
)


@app.command("retry")
def retry_command(
    batch: str | None = typer.Option(None, "--batch", "-b", help="The batch to retry tasks of."),
    failed: bool = typer.Option(False, "--failed", help="Retry the batch's failed tasks."),
    rejected: bool = typer.Option(False, "--rejected", help="Retry the batch's rejected tasks."),
    ids: list[str] | None = IDS_OPTION,
    force: bool = FORCE_OPTION,
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Queue failed or rejected tasks again as new tasks with new external_task_ids.

    Each new task (<old id>-r1, -r2, ...) is linked to the one it retries; `klingwatch show`
    prints the lineage. Tasks already retried are skipped (retry the newest attempt instead).
    A succeeded task is retried only with --force (Kling bills the new task again).
    The new tasks are queued; `klingwatch watch` (or serve) sends them as slots free up.
    """
    result = run_async(_retry(load_settings(db), batch, failed, rejected, _split(ids or []), force))
    made, skipped = result.queued, result.skipped
    if as_json:
        print_json(
            {
                "retried": [
                    {
                        "from": old.external_task_id,
                        "from_local_id": old.local_id,
                        "from_status": old.status.value,
                        "external_task_id": new.external_task_id,
                        "local_id": new.local_id,
                    }
                    for old, new in made
                ],
                "skipped_already_retried": [t.external_task_id for t in skipped],
            }
        )
        return
    out = console()
    if made:
        _print_table(
            ("retries", "was", "reason", "new task", "new external_task_id"),
            [
                (
                    f"#{old.local_id} {old.external_task_id}",
                    old.status.value,
                    old.status_msg,
                    f"#{new.local_id}",
                    new.external_task_id,
                )
                for old, new in made
            ],
            title=f"{len(made)} tasks queued again",
        )
    if skipped:
        out.print(
            f"{len(skipped)} skipped: already retried (e.g. `klingwatch show "
            f"{skipped[0].external_task_id}`)"
        )
    if not made:
        out.print("nothing to retry")
        return
    out.print("queued; run `klingwatch watch` to send them as slots free up")
