"""``klingwatch show``: one task and its timeline."""

from __future__ import annotations

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    DB_OPTION,
    JSON_OPTION,
    console,
    format_ms,
    format_time,
    open_ledger,
    print_json,
    print_table,
)
from klingwatch.cli.export import export_record
from klingwatch.cli.retry import lineage_lines
from klingwatch.operations.queries import task_detail
from klingwatch.store import LocalStatus
from klingwatch.timestamps import stamp


@app.command("show")
def show_command(
    ref: str = typer.Argument(
        ..., help="Local id, external_task_id or Kling task id.", show_default=False
    ),
    as_json: bool = JSON_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """Show a task with its timeline: every status change and note, when, and from where."""
    with open_ledger(db) as ledger:
        detail = task_detail(ledger, ref)
    task, events, downloads = detail.task, detail.events, detail.downloads
    retries = lineage_lines(detail)
    record = export_record(task, downloads)
    if as_json:
        record["request"] = task.request
        record["events"] = [
            {
                **stamp("at", e.at),
                "from": None if e.from_status is None else e.from_status.value,
                "to": e.to_status.value,
                "source": e.source.value,
                "detail": e.detail,
            }
            for e in events
        ]
        record["lineage"] = retries
        print_json(record)
        return
    out = console()
    out.print(f"[bold]{task.external_task_id}[/bold]  Kling id {task.task_id or '-'}")
    out.print(
        f"batch {task.batch}  ·  {task.product} {task.model or ''} {task.mode or ''}  ·  "
        f"[bold]{task.status.value}[/bold]" + (f"  ({task.status_msg})" if task.status_msg else "")
    )
    for line in retries:
        out.print(line)
    if task.stuck:
        out.print(f"[yellow]stuck:[/yellow] {task.stuck_reason}")
    if task.hold_reason and task.status is LocalStatus.QUEUED:
        out.print(f"[yellow]{task.hold_reason}[/yellow] (klingwatch resume --raise-cap)")
    charges = [f"≈{task.units_estimated} units estimated"] if task.units_estimated else []
    if task.units is not None:
        charges.append(f"{task.units} units charged")
    if task.cash_amount is not None:
        charges.append(f"{task.cash_amount} {task.cash_currency or 'cash'} charged")
    if charges:
        out.print("  ·  ".join(charges))
    out.print(
        f"Kling created {format_ms(task.kling_created_ms) or '-'}, updated "
        f"{format_ms(task.kling_updated_ms) or '-'}  ·  polls {task.polls}"
    )
    for url in record["result_urls"]:
        out.print(f"result: {url}")
    for path in record["downloaded_files"]:
        out.print(f"file: {path}")
    print_table(
        ("at", "from", "to", "source", "detail"),
        [
            (
                format_time(e.at),
                e.from_status.value if e.from_status else None,
                e.to_status.value,
                e.source.value,
                e.detail,
            )
            for e in events
        ],
        title="timeline",
    )
