"""``klingwatch status``: where a batch (or everything) stands, in one glance."""

from __future__ import annotations

from dataclasses import asdict

from klingwatch.cli.app import app
from klingwatch.cli.common import (
    BATCH_OPTION,
    DB_OPTION,
    JSON_OPTION,
    console,
    format_age,
    load_settings,
    open_ledger,
    print_json,
    wall_time,
)
from klingwatch.monitor.expiry import format_when
from klingwatch.operations.queries import Status, gather

__all__ = ["Status", "gather", "status_command"]


@app.command("status")
def status_command(
    batch: str | None = BATCH_OPTION,
    as_json: bool = JSON_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """Counts by status, stuck tasks, the oldest task in flight and a rough ETA."""
    settings = load_settings(db)
    with open_ledger(db, settings=settings) as ledger:
        status = gather(ledger, batch=batch, now=wall_time(), warn_days=settings.expiry_warn_days)
        alerts = [alert.message for alert in ledger.alerts()]  # e.g. submissions paused
    if as_json:
        print_json({**asdict(status), "alerts": alerts})
        return
    out = console()
    title = f"batch {batch}" if batch else "all batches"
    out.print(f"[bold]{title}[/bold]: {status.total} tasks")
    out.print(
        "  ".join(f"{name} {n}" for name, n in status.counts.items() if n)
        or "no tasks yet (add some with klingwatch submit or klingwatch track)"
    )
    for message in alerts:
        out.print(f"[bold red]alert:[/bold red] {message}")
    for held in status.held:
        out.print(
            f"[bold yellow]{held['held']} tasks of batch {held['batch']} {held['reason']}"
            f"[/bold yellow] (klingwatch resume --raise-cap N --batch {held['batch']})"
        )
    spend = status.spend
    if status.total:
        cash = "".join(f", {c['amount']} {c['currency'] or 'cash'}" for c in spend["cash"])
        out.print(
            f"units: ≈{spend['units_estimated']} estimated, {spend['units_spent']} spent{cash}"
        )
    if status.stuck:
        out.print(f"[yellow]stuck {status.stuck}[/yellow] (klingwatch stuck)")
    if status.oldest_active is not None:
        o = status.oldest_active
        out.print(
            f"oldest in flight: {o['external_task_id']} ({o['status']}, "
            f"{format_age(o['age_seconds'])})"
        )
    if status.eta_seconds is not None:
        how = "recent finishes" if status.eta_basis == "throughput" else "learned durations"
        out.print(f"ETA ~{format_age(status.eta_seconds)} (from {how})")
    if status.expiring:
        first = status.expiring[0]
        out.print(
            f"[bold yellow]{len(status.expiring)} tasks' results not downloaded yet are deleted "
            f"by Kling soon[/bold yellow] (first: {first['external_task_id']} on "
            f"{format_when(first['deleted_at'])}); run klingwatch download"
        )
    if status.results_lost:
        out.print(
            f"[red]{status.results_lost} tasks' results were deleted by Kling before they "
            "were downloaded[/red]"
        )
    files = status.files
    if files["total"]:
        line = f"files: {files['complete']}/{files['total']} downloaded"
        if files["expired"] or files["failed"]:
            line += f", {files['expired']} expired, {files['failed']} failed"
        out.print(line)
