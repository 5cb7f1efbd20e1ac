"""``klingwatch status``: where a batch (or everything) stands, in one glance."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
from klingwatch.monitor.eta import estimate, progress
from klingwatch.monitor.expiry import DEFAULT_WARN_DAYS, collection, expires_at, format_when
from klingwatch.operations.spend import summarize_spend
from klingwatch.store import ACTIVE_STATUSES, Ledger, LocalStatus
from klingwatch.store.budget import hold_message

#: In-flight tasks read for the oldest one (Kling's slots bound them anyway).
_IN_FLIGHT_SAMPLE = 2000


@dataclass(frozen=True, slots=True)
class Status:
    """What ``status`` reports (also its ``--json`` shape)."""

    batch: str | None
    total: int
    counts: dict[str, int]
    active: int
    stuck: int
    oldest_active: dict[str, Any] | None
    #: seconds until every task is final (:mod:`klingwatch.monitor.eta`), and what it rests on
    eta_seconds: float | None
    eta_basis: str
    #: results not yet downloaded that Kling deletes within the warning window (soonest first)
    expiring: list[dict[str, Any]]
    #: succeeded tasks whose results Kling has already deleted before they were collected
    results_lost: int
    #: downloads: result files in all, complete on disk, expired, failed
    files: dict[str, int]
    #: units estimated when queued and spent as Kling reported, cash charged (``spend``)
    spend: dict[str, Any]
    #: batches whose budget cap holds tasks back: batch, held, reason
    held: list[dict[str, Any]]


def gather(
    ledger: Ledger, *, batch: str | None, now: float, warn_days: float = DEFAULT_WARN_DAYS
) -> Status:
    """Counts by SQL; only in-flight tasks (few: Kling's slots bound them) are read for the ETA."""
    counts = ledger.counts(batch=batch)
    active = sum(counts.get(s, 0) for s in ACTIVE_STATUSES)
    stuck = len(ledger.tasks(stuck=True, batch=batch)) if active else 0
    in_flight = (
        ledger.tasks(status=ACTIVE_STATUSES, batch=batch, limit=_IN_FLIGHT_SAMPLE) if active else []
    )
    oldest = None
    if in_flight:
        first = in_flight[0]
        since = first.sent_at if first.sent_at is not None else first.queued_at
        if first.kling_created_ms is not None:
            since = first.kling_created_ms / 1000.0
        oldest = {
            "local_id": first.local_id,
            "external_task_id": first.external_task_id,
            "task_id": first.task_id,
            "status": first.status.value,
            "age_seconds": round(now - since, 1),
        }
    eta = estimate(progress(ledger, batch, now))
    collected = collection(ledger, now, warn_days, batch=batch)
    spent = summarize_spend(ledger.spend_lines(batch=batch), ()).total.to_dict()
    return Status(
        batch=batch,
        total=sum(counts.values()),
        counts={s.value: counts.get(s, 0) for s in LocalStatus},
        active=active,
        stuck=stuck,
        oldest_active=oldest,
        eta_seconds=eta.seconds,
        eta_basis=eta.basis.value,
        expiring=[
            {
                "external_task_id": task.external_task_id,
                "task_id": task.task_id,
                "deleted_at": when,
            }
            for task in collected.expiring
            if (when := expires_at(task)) is not None
        ],
        results_lost=collected.lost,
        files={
            "total": collected.files,
            "complete": collected.files_complete,
            "expired": collected.files_expired,
            "failed": collected.files_failed,
        },
        spend={k: spent[k] for k in ("units_estimated", "units_spent", "cash")},
        held=_held(ledger, batch) if counts.get(LocalStatus.QUEUED, 0) else [],
    )


def _held(ledger: Ledger, batch: str | None) -> list[dict[str, Any]]:
    """Each batch whose cap holds tasks back, with the reason they show."""
    names = [batch] if batch is not None else [b.name for b in ledger.batches() if b.max_units]
    out = []
    for name in names:
        budget = ledger.budget(name)
        if budget is None or not budget.held or budget.max_units is None:
            continue
        reason = hold_message(budget.max_units, budget.committed, budget.estimated)
        out.append({"batch": name, "held": budget.held, "reason": reason})
    return out


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
