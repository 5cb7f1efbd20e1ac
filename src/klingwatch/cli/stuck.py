"""``klingwatch stuck``: tasks flagged as stuck (never killed; still watched)."""

from __future__ import annotations

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    BATCH_OPTION,
    DB_OPTION,
    JSON_OPTION,
    format_age,
    open_ledger,
    print_json,
    print_table,
    wall_time,
)
from klingwatch.cli.export import export_record


@app.command("stuck")
def stuck_command(
    batch: str | None = BATCH_OPTION,
    as_json: bool = JSON_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """List tasks in one status far past what their kind usually takes, with the reason.

    They are only flagged: klingwatch keeps watching them, and the flag clears when they move.
    """
    with open_ledger(db) as ledger:
        tasks = ledger.tasks(stuck=True, batch=batch)
    if as_json:
        print_json([export_record(t) for t in tasks])
        return
    now = wall_time()
    print_table(
        ("id", "external id", "Kling id", "status", "sent", "reason"),
        [
            (
                t.local_id,
                t.external_task_id,
                t.task_id,
                t.status.value,
                None if t.sent_at is None else f"{format_age(now - t.sent_at)} ago",
                t.stuck_reason,
            )
            for t in tasks
        ],
        title=f"{len(tasks)} stuck tasks",
    )
