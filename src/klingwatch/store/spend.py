"""What each task was expected to cost and what Kling charged for it, for the spend ledger.

Amounts are kept as Kling writes them (decimal strings), so they are summed exactly in Python
rather than as floats in SQL; :func:`spend_lines` reads only the few columns that takes.

A task's **day** (UTC) is when its money was spent: when it finished, else when it was sent,
else when it was queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection, func, select

from klingwatch.store.budget import parse_units
from klingwatch.store.records import LocalStatus
from klingwatch.store.schema import batches, tasks

__all__ = ["SpendLine", "spend_lines"]


@dataclass(frozen=True, slots=True)
class SpendLine:
    """One task as the spend ledger sees it."""

    batch: str
    product: str
    model: str | None
    mode: str | None
    #: ``YYYY-MM-DD`` (UTC) of when it spent (see the module docstring).
    day: str
    status: LocalStatus
    units_estimated: Decimal | None
    #: Units Kling deducted (``final_unit_deduction`` / unit ``billing[]``), once known.
    units_spent: Decimal | None
    cash_amount: Decimal | None
    cash_currency: str | None


def spend_lines(
    conn: Connection, *, batch: str | None = None, since: float | None = None
) -> list[SpendLine]:
    """Every task (of ``batch``; spending at or after ``since``, Unix seconds), oldest first."""
    when = func.coalesce(tasks.c.finished_at, tasks.c.sent_at, tasks.c.queued_at)
    query = (
        select(
            batches.c.name,
            tasks.c.product,
            tasks.c.model,
            tasks.c.mode,
            when.label("when"),
            tasks.c.status,
            tasks.c.units_estimated,
            tasks.c.units,
            tasks.c.cash_amount,
            tasks.c.cash_currency,
        )
        .join_from(tasks, batches, tasks.c.batch_id == batches.c.id)
        .order_by(tasks.c.id)
    )
    if batch is not None:
        query = query.where(batches.c.name == batch)
    if since is not None:
        query = query.where(when >= since)
    return [
        SpendLine(
            batch=row.name,
            product=row.product,
            model=row.model,
            mode=row.mode,
            day=datetime.fromtimestamp(row.when, UTC).strftime("%Y-%m-%d"),
            status=LocalStatus(row.status),
            units_estimated=parse_units(row.units_estimated),
            units_spent=parse_units(row.units),
            cash_amount=parse_units(row.cash_amount),
            cash_currency=row.cash_currency,
        )
        for row in conn.execute(query)
    ]
