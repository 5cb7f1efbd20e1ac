"""Retries: a finished task queued again as a new task, linked to the one it retries.

A retry gets a new ``external_task_id`` (``<root>-r1``, ``-r2``, ...; the root is the original id
without any ``-rN``), the same request, and ``retry_of`` set to the task it retries, so Kling sees a
new request and ``show`` can print the lineage.

:func:`check_retry` is the one rule both faces (``klingwatch retry`` and ``POST
/api/tasks/{ref}/retry``) apply, and :func:`retry_task` applies it again so that no caller can
skip it: only a finished task is retried, and a succeeded one only when forced, since a retry is a
new task that Kling bills again. Refusals raise :class:`RetryRefused`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from klingwatch.errors import KlingwatchError
from klingwatch.monitor.estimate import estimate_units
from klingwatch.store import Ledger, LocalStatus, NewTask, TaskRecord
from klingwatch.store.budget import format_units

__all__ = [
    "RetryRefused",
    "check_retry",
    "lineage",
    "pick_retries",
    "retry_external_id",
    "retry_task",
]

logger = logging.getLogger(__name__)

_RETRY_SUFFIX = re.compile(r"-r(\d+)$")


class RetryRefused(KlingwatchError):
    """A retry that must not happen: nothing retryable named, a task still in flight, or a
    succeeded task without ``force``. Nothing was queued."""


def check_retry(task: TaskRecord, *, force: bool = False, how_to_force: str = "--force") -> None:
    """Raise :class:`RetryRefused` unless ``task`` may be retried.

    ``how_to_force`` is how the caller's face says "force" (``--force``, ``"force": true``), for
    the message.
    """
    name = task.external_task_id
    if not task.status.is_final:
        raise RetryRefused(
            f"task {name!r} is {task.status.value}; only a finished task can be retried"
        )
    if task.status is LocalStatus.SUCCEED and not force:
        raise RetryRefused(
            f"task {name!r} succeeded: retrying it queues a new task that Kling bills again; "
            f"add {how_to_force} to retry it anyway"
        )


def retry_external_id(ledger: Ledger, external_task_id: str) -> str:
    """The next free ``<root>-r<k>`` id for a retry of ``external_task_id``."""
    root = _RETRY_SUFFIX.sub("", external_task_id)
    k = 1
    while ledger.task(f"{root}-r{k}") is not None:
        k += 1
    return f"{root}-r{k}"


def retry_task(
    ledger: Ledger,
    record: TaskRecord,
    *,
    force: bool = False,
    how_to_force: str = "--force",
) -> TaskRecord:
    """Queue a new task with ``record``'s request, a new external id, linked by ``retry_of``.

    :func:`check_retry` first (``force`` and ``how_to_force`` are passed on). The new task is in
    ``record``'s batch; the submitter sends it when a slot frees.
    """
    check_retry(record, force=force, how_to_force=how_to_force)
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
        # The retry is billed again: its cost counts against the batch's cap like the first.
        units_estimated=record.units_estimated
        or format_units(estimate_units(record.product, record.request)),
    )
    result = ledger.add_tasks(record.batch, [new])
    local_id = (result.added or result.existing)[0]
    created = ledger.task(local_id)
    assert created is not None
    logger.info("task %s retries %s as %s", local_id, record.local_id, new.external_task_id)
    return created


def _find(ledger: Ledger, ref: str) -> TaskRecord | None:
    # A short number is a local id first (as in `show`), else an external or Kling id.
    local = ref.isascii() and ref.isdigit() and len(ref) < 10
    task = ledger.task(int(ref)) if local else None
    return task if task is not None else ledger.task(ref)


def _retried(ledger: Ledger, batch: str) -> set[int]:
    """Local ids (in ``batch``) that some task already retries."""
    return {t.retry_of for t in ledger.tasks(batch=batch) if t.retry_of is not None}


def pick_retries(
    ledger: Ledger,
    *,
    batch: str | None,
    failed: bool,
    rejected: bool,
    ids: Sequence[str],
    force: bool = False,
    how_to_force: str = "--force",
) -> tuple[list[TaskRecord], list[TaskRecord]]:
    """``(to retry, skipped because already retried)``: a batch's failed and/or rejected tasks,
    and tasks named by local, external or Kling id.

    Raises :class:`RetryRefused` for nothing asked for, an unknown batch or id, or a named task
    :func:`check_retry` refuses (in flight, or succeeded without ``force``); then nothing is
    picked. A task picked by a filter that some task already retries is skipped (retry the
    newest attempt instead), so asking twice queues nothing twice; a task named by id is
    retried even so.
    """
    if not (failed or rejected or ids):
        raise RetryRefused(
            "say what to retry: --failed, --rejected, or --ids ID... (retrying spends units)"
        )
    if (failed or rejected) and batch is None:
        raise RetryRefused("--failed/--rejected need --batch NAME (see `klingwatch status`)")
    if batch is not None and batch not in {b.name for b in ledger.batches()}:
        raise RetryRefused(f"no batch named {batch!r} in the ledger (see `klingwatch status`)")
    chosen: dict[int, TaskRecord] = {}
    statuses = [
        s for s, on in ((LocalStatus.FAILED, failed), (LocalStatus.REJECTED, rejected)) if on
    ]
    if statuses:
        for task in ledger.tasks(batch=batch, status=statuses):
            chosen[task.local_id] = task
    explicit: set[int] = set()
    for ref in ids:
        named = _find(ledger, ref)
        if named is None:
            raise RetryRefused(f"no task {ref!r} in the ledger (a local id, external or Kling id)")
        if batch is not None and named.batch != batch:
            raise RetryRefused(f"task {ref!r} is in batch {named.batch!r}, not {batch!r}")
        check_retry(named, force=force, how_to_force=how_to_force)
        chosen[named.local_id] = named
        explicit.add(named.local_id)
    retried: set[int] = set()
    for name in {t.batch for t in chosen.values()}:
        retried |= _retried(ledger, name)
    todo = [t for i, t in sorted(chosen.items()) if i not in retried or i in explicit]
    skipped = [t for i, t in sorted(chosen.items()) if i in retried and i not in explicit]
    return todo, skipped


def lineage(ledger: Ledger, task: TaskRecord) -> tuple[list[TaskRecord], list[TaskRecord]]:
    """``(what it retries, oldest first; what retries it, in order)``."""
    before: list[TaskRecord] = []
    seen = {task.local_id}
    current = task
    while current.retry_of is not None and current.retry_of not in seen:
        parent = ledger.task(current.retry_of)
        if parent is None:
            break
        before.insert(0, parent)
        seen.add(parent.local_id)
        current = parent
    children: dict[int | None, list[TaskRecord]] = {}
    for t in ledger.tasks(batch=task.batch):
        children.setdefault(t.retry_of, []).append(t)
    after: list[TaskRecord] = []
    queue = list(children.get(task.local_id, []))
    while queue:
        nxt = queue.pop(0)
        if nxt.local_id in seen:
            continue
        seen.add(nxt.local_id)
        after.append(nxt)
        queue.extend(children.get(nxt.local_id, []))
    return before, after
