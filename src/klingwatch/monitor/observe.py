"""Observe: what Kling said, as ledger observations.

This is the one place where :mod:`klingwatch.kling` types meet :mod:`klingwatch.store` types
(DESIGN.md: neither knows the other). Every status report the engine hands to
:meth:`klingwatch.store.Ledger.apply_many` is built here:

* :func:`observe_task` a task read by a single get, a ``/tasks`` query, a list page, a callback
  or a recovery lookup;
* :func:`observe_create` the answer to a create.

What a *failed* create means is not decided here but in one pure table,
:func:`klingwatch.kling.outcomes.create_outcome`, which the submitter's create policy acts on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from klingwatch.kling.models import Task, TaskStatus
from klingwatch.store import LocalStatus, Observation, Source

__all__ = [
    "STATUS_MAP",
    "cash_charged",
    "observe_create",
    "observe_task",
    "result_json",
]

#: Kling's statuses (both spellings are parsed into :class:`TaskStatus`) as local statuses.
STATUS_MAP: dict[TaskStatus, LocalStatus] = {
    TaskStatus.SUBMITTED: LocalStatus.SUBMITTED,
    TaskStatus.PROCESSING: LocalStatus.PROCESSING,
    TaskStatus.SUCCEED: LocalStatus.SUCCEED,
    TaskStatus.FAILED: LocalStatus.FAILED,
}


def result_json(task: Task) -> dict[str, Any] | None:
    """The task's results as the ledger keeps them; ``None`` when there is nothing to keep.

    ``{"videos": [{id, url, watermark_url, duration}], "images": [{index, url, ...}],
    "audios": [...], "parent_video": {...}}``, only the keys that have content.
    """
    out: dict[str, Any] = {}
    for key, items in (("videos", task.videos), ("images", task.images), ("audios", task.audios)):
        if items:
            out[key] = [item.model_dump(mode="json", exclude_none=True) for item in items]
    if task.parent_video is not None:
        out["parent_video"] = task.parent_video.model_dump(mode="json", exclude_none=True)
    return out or None


def observe_task(
    task: Task,
    *,
    source: Source,
    at: float,
    local_id: int | None = None,
    detail: str | None = None,
) -> Observation:
    """An observation of ``task`` learned at ``at`` (clock seconds) through ``source``.

    Give ``local_id`` when the engine already knows which row this is (tasks adopted with
    ``track`` carry a made-up external id, so Kling's ``external_id`` cannot identify them).
    """
    cash = cash_charged(task)
    return Observation(
        status=STATUS_MAP[task.status],
        source=source,
        at=at,
        local_id=local_id,
        external_task_id=None if local_id is not None else task.external_id,
        task_id=task.id,
        status_msg=task.status_msg or None,
        kling_created_ms=task.created_ms,
        kling_updated_ms=task.updated_ms,
        result=result_json(task),
        units=None if task.units is None else str(task.units),
        cash_amount=None if cash is None else str(cash[0]),
        cash_currency=None if cash is None else cash[1],
        detail=detail,
    )


def cash_charged(task: Task) -> tuple[Decimal, str | None] | None:
    """The cash a task was charged (its ``billing[]`` items of ``charge_type`` cash, summed)
    and their currency; ``None`` when it was charged none (a resource-pack task)."""
    items = [b for b in task.billing if b.amount is not None and not b.is_unit]
    if not items:
        return None
    currencies = {b.currency for b in items if b.currency}
    # One task is billed in one currency; should Kling ever mix them, say so rather than add.
    currency = currencies.pop() if len(currencies) == 1 else ("mixed" if currencies else None)
    return sum((b.amount or Decimal(0) for b in items), Decimal(0)), currency


def observe_create(task: Task, *, local_id: int, at: float) -> Observation:
    """The answer to a create: the task exists now and has Kling's ``task_id``."""
    return observe_task(task, source=Source.CREATE, at=at, local_id=local_id)
