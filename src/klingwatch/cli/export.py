"""``klingwatch export``: one record per task, as a JSON array or CSV.

Every instant is two fields, ``<name>_ms`` (epoch milliseconds) and ``<name>_iso`` (ISO-8601 UTC),
as in the JSON API (:mod:`klingwatch.timestamps`); in CSV, booleans are ``true``/``false``, an
unknown value is an empty cell and lists are joined with spaces.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import BATCH_OPTION, DB_OPTION, open_ledger
from klingwatch.operations.queries import result_urls
from klingwatch.store import DownloadRecord, Ledger, TaskRecord
from klingwatch.timestamps import stamp, stamp_ms

#: The instants of an export record, each written as ``<name>_ms`` and ``<name>_iso``.
INSTANTS = (
    "kling_created_at",
    "kling_updated_at",
    "queued_at",
    "sent_at",
    "submitted_at",
    "processing_at",
    "finished_at",
    "detected_at",
)

#: Fields of an export record, in CSV column order.
FIELDS = (
    "local_id",
    "external_task_id",
    "task_id",
    "batch",
    "product",
    "model",
    "mode",
    "duration",
    "status",
    "status_msg",
    *(f"{name}_{form}" for name in INSTANTS for form in ("ms", "iso")),
    "polls",
    "stuck",
    "stuck_reason",
    "result_urls",
    "units_estimated",
    "units",
    "cash_amount",
    "cash_currency",
    "hold_reason",
    "downloaded_files",
    "source_line",
)


def export_record(task: TaskRecord, downloads: Iterable[DownloadRecord] = ()) -> dict[str, Any]:
    """A task as exported: every instant (Kling's and klingwatch's) as epoch ms and ISO-8601."""
    return {
        "local_id": task.local_id,
        "external_task_id": task.external_task_id,
        "task_id": task.task_id,
        "batch": task.batch,
        "product": task.product,
        "model": task.model,
        "mode": task.mode,
        "duration": task.duration,
        "status": task.status.value,
        "status_msg": task.status_msg,
        **stamp_ms("kling_created_at", task.kling_created_ms),
        **stamp_ms("kling_updated_at", task.kling_updated_ms),
        **stamp("queued_at", task.queued_at),
        **stamp("sent_at", task.sent_at),
        **stamp("submitted_at", task.submitted_at),
        **stamp("processing_at", task.processing_at),
        **stamp("finished_at", task.finished_at),
        **stamp("detected_at", task.detected_at),
        "polls": task.polls,
        "stuck": task.stuck,
        "stuck_reason": task.stuck_reason,
        "result_urls": result_urls(task.result),
        "units_estimated": task.units_estimated,
        "units": task.units,
        "cash_amount": task.cash_amount,
        "cash_currency": task.cash_currency,
        "hold_reason": task.hold_reason,
        "downloaded_files": [d.path for d in downloads if d.state == "complete" and d.path],
        "source_line": task.source_line,
    }


def export_records(ledger: Ledger, *, batch: str | None = None) -> list[dict[str, Any]]:
    """Every task (of ``batch``) as an export record, in ledger order."""
    files: dict[int, list[DownloadRecord]] = {}
    for download in ledger.downloads():
        files.setdefault(download.local_id, []).append(download)
    return [
        export_record(task, sorted(files.get(task.local_id, ()), key=lambda d: d.index))
        for task in ledger.tasks(batch=batch)
    ]


def csv_cell(value: Any) -> str | int | float:
    """One value as a CSV cell: ``true``/``false``, empty for unknown, lists joined by spaces."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value if isinstance(value, int | float) else str(value)


def to_csv(records: list[dict[str, Any]]) -> str:
    """CSV with a header row (:data:`FIELDS`), cells as :func:`csv_cell` writes them."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: csv_cell(v) for k, v in record.items()})
    return out.getvalue()


@app.command("export")
def export_command(
    batch: str | None = BATCH_OPTION,
    fmt: str = typer.Option("json", "--format", "-f", help="json (an array) or csv."),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here, not stdout.")
    ] = None,
    db: str | None = DB_OPTION,
) -> None:
    """Export one record per task: ids, status and reason, Kling's and klingwatch's times (each
    as <name>_ms, epoch milliseconds, and <name>_iso, ISO-8601 UTC), polls, result URLs, units
    and downloaded files. CSV writes booleans as true/false."""
    if fmt not in ("json", "csv"):
        raise typer.BadParameter("use json or csv", param_hint="--format")
    with open_ledger(db) as ledger:
        records = export_records(ledger, batch=batch)
    text = json.dumps(records, indent=2) + "\n" if fmt == "json" else to_csv(records)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(records)} tasks written to {output}", err=True)
