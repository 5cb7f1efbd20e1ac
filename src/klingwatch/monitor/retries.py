"""Retries: a finished task queued again as a new task, linked to the one it retries.

A retry gets a new ``external_task_id`` (``<root>-r1``, ``-r2``, ...; the root is the original id
without any ``-rN``), the same request, and ``retry_of`` set to the task it retries, so Kling sees a
new request and ``show`` can print the lineage.
"""

from __future__ import annotations

import logging
import re

from klingwatch.store import Ledger, NewTask, TaskRecord

__all__ = ["retry_external_id", "retry_task"]

logger = logging.getLogger(__name__)

_RETRY_SUFFIX = re.compile(r"-r(\d+)$")


def retry_external_id(ledger: Ledger, external_task_id: str) -> str:
    """The next free ``<root>-r<k>`` id for a retry of ``external_task_id``."""
    root = _RETRY_SUFFIX.sub("", external_task_id)
    k = 1
    while ledger.task(f"{root}-r{k}") is not None:
        k += 1
    return f"{root}-r{k}"


def retry_task(ledger: Ledger, record: TaskRecord, *, at: float | None = None) -> TaskRecord:
    """Queue a new task with ``record``'s request, a new external id, linked by ``retry_of``.

    The new task is in ``record``'s batch; the submitter sends it when a slot frees. ``at`` is
    accepted for callers that pass the clock's time (the ledger stamps its own).
    """
    del at
    new = NewTask(
        product=record.product,
        request=record.request,
        external_task_id=retry_external_id(ledger, record.external_task_id),
        model=record.model,
        mode=record.mode,
        duration=record.duration,
        family=record.family,
        slot_cost=record.slot_cost,
        callback_url=record.callback_url,
        retry_of=record.local_id,
        source_line=record.source_line,
    )
    result = ledger.add_tasks(record.batch, [new])
    local_id = (result.added or result.existing)[0]
    created = ledger.task(local_id)
    assert created is not None
    logger.info("task %s retries %s as %s", local_id, record.local_id, new.external_task_id)
    return created
