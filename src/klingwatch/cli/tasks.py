"""``klingwatch tasks``: the ledger's tasks, filtered by status and batch."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    BATCH_OPTION,
    DB_OPTION,
    JSON_OPTION,
    WIDE_OPTION,
    format_age,
    open_ledger,
    print_json,
    print_table,
    wall_time,
)
from klingwatch.cli.export import export_record
from klingwatch.store import LocalStatus, TaskRecord


def parse_statuses(values: list[str] | None) -> list[LocalStatus] | None:
    """``--status`` values (repeatable, or comma-separated) as statuses; ``active`` = in flight."""
    if not values:
        return None
    out: list[LocalStatus] = []
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if name == "active":
                out += [LocalStatus.UNKNOWN, LocalStatus.SUBMITTED, LocalStatus.PROCESSING]
                continue
            try:
                out.append(LocalStatus(name))
            except ValueError:
                known = ", ".join([*(s.value for s in LocalStatus), "active"])
                raise typer.BadParameter(
                    f"unknown status {name!r}; use one of {known}", param_hint="--status"
                ) from None
    return out


def _kind(task: TaskRecord) -> str:
    return " ".join(part for part in (task.product, task.model, task.mode) if part)


@app.command("tasks")
def tasks_command(
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status", "-s", help="Only these statuses (repeat or comma-separate; 'active')."
        ),
    ] = None,
    batch: str | None = BATCH_OPTION,
    limit: int | None = typer.Option(None, "--limit", "-n", help="At most this many tasks."),
    wide: bool = WIDE_OPTION,
    as_json: bool = JSON_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """List tasks with their status, age, polls and failure reason.

    The table fits the terminal; --wide adds each task's Kling id, batch and kind in full.
    """
    wanted = parse_statuses(status)
    with open_ledger(db) as ledger:
        tasks = ledger.tasks(status=wanted, batch=batch, limit=limit)
    if as_json:
        print_json([export_record(t) for t in tasks])
        return
    now = wall_time()
    title = f"{len(tasks)} tasks"
    if wide:
        print_table(
            ("id", "external id", "Kling id", "batch", "kind", "status", "age", "polls", "reason"),
            [
                (
                    t.local_id,
                    t.external_task_id,
                    t.task_id,
                    t.batch,
                    _kind(t),
                    _status(t),
                    format_age(now - t.queued_at),
                    t.polls,
                    t.status_msg or t.hold_reason,
                )
                for t in tasks
            ],
            title=title,
            wide=True,
        )
        return
    print_table(
        (
            Column("id", justify="right", no_wrap=True),
            Column("task", no_wrap=True, overflow="ellipsis", min_width=12, max_width=28),
            Column("status", min_width=10),
            Column("age", no_wrap=True),
            Column("polls", justify="right", no_wrap=True),
            Column("reason", ratio=1, min_width=12),
        ),
        [
            (
                t.local_id,
                t.external_task_id,
                _status(t),
                format_age(now - t.queued_at),
                t.polls,
                t.status_msg or t.hold_reason,
            )
            for t in tasks
        ],
        title=f"{title} (--wide for Kling ids, batches and kinds)",
    )


def _status(task: TaskRecord) -> str:
    held = task.hold_reason is not None and task.status is LocalStatus.QUEUED
    return task.status.value + (" (stuck)" if task.stuck else "") + (" (held)" if held else "")
