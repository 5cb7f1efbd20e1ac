"""``klingwatch retry``: queue finished tasks again, as new tasks linked to the ones they retry.

A retry is a *new* task: a new ``external_task_id`` (``<old>-r1``, ``-r2``, ...) so Kling sees a new
request, the same request body, and ``retry_of`` pointing at the task it retries (``show`` prints
the lineage). A task that was already retried is not retried again by ``--failed``/``--rejected``
(retry the newest attempt instead), so running the same command twice queues nothing twice.
A succeeded task is retried only with ``--force``: the retry is a new task that Kling bills again
(the rule is :func:`klingwatch.monitor.retries.check_retry`, the same for the API).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from klingwatch.cli.app import app
from klingwatch.cli.common import DB_OPTION, JSON_OPTION, console, open_ledger, print_json
from klingwatch.cli.common import print_table as _print_table
from klingwatch.monitor.retries import RetryRefused, check_retry, retry_task
from klingwatch.store import Ledger, LocalStatus, TaskRecord

__all__ = ["lineage", "lineage_lines", "pick_retries"]


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
) -> tuple[list[TaskRecord], list[TaskRecord]]:
    """``(to retry, skipped because already retried)``.

    Raises :class:`~klingwatch.monitor.retries.RetryRefused` for nothing asked for, an unknown
    id, or a named task :func:`~klingwatch.monitor.retries.check_retry` refuses (in flight, or
    succeeded without ``force``); then nothing is queued.
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
        check_retry(named, force=force)
        chosen[named.local_id] = named
        explicit.add(named.local_id)
    retried: set[int] = set()
    for name in {t.batch for t in chosen.values()}:
        retried |= _retried(ledger, name)
    todo = [t for i, t in sorted(chosen.items()) if i not in retried or i in explicit]
    skipped = [t for i, t in sorted(chosen.items()) if i in retried and i not in explicit]
    return todo, skipped


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


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


def lineage_lines(ledger: Ledger, task: TaskRecord) -> list[str]:
    """Lines for ``show``: ``retries #3 kw-x (failed: reason)`` / ``retried by #9 kw-x-r1``."""

    def label(t: TaskRecord) -> str:
        why = f": {t.status_msg}" if t.status_msg else ""
        return f"#{t.local_id} {t.external_task_id} ({t.status.value}{why})"

    before, after = lineage(ledger, task)
    lines = [f"retries {label(t)}" for t in reversed(before)]
    lines += [f"retried by {label(t)}" for t in after]
    return lines


IDS_OPTION: Any = typer.Option(
    None,
    "--ids",
    help="Retry these tasks (local, external or Kling ids): --ids 3,4 or --ids 3 --ids 4.",
)


FORCE_OPTION: Any = typer.Option(
    False,
    "--force",
    help="Also retry succeeded tasks named with --ids (each retry is a new task, paid again).",
)


@app.command("retry")
def retry_command(
    batch: str | None = typer.Option(None, "--batch", "-b", help="The batch to retry tasks of."),
    failed: bool = typer.Option(False, "--failed", help="Retry the batch's failed tasks."),
    rejected: bool = typer.Option(False, "--rejected", help="Retry the batch's rejected tasks."),
    ids: list[str] | None = IDS_OPTION,
    force: bool = FORCE_OPTION,
    db: str | None = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Queue failed or rejected tasks again as new tasks with new external_task_ids.

    Each new task (<old id>-r1, -r2, ...) is linked to the one it retries; `klingwatch show`
    prints the lineage. Tasks already retried are skipped (retry the newest attempt instead).
    A succeeded task is retried only with --force (Kling bills the new task again).
    The new tasks are queued; `klingwatch watch` (or serve) sends them as slots free up.
    """
    with open_ledger(db) as ledger:
        todo, skipped = pick_retries(
            ledger,
            batch=batch,
            failed=failed,
            rejected=rejected,
            ids=_split(ids or []),
            force=force,
        )
        made = [(old, retry_task(ledger, old, force=force)) for old in todo]
    if as_json:
        print_json(
            {
                "retried": [
                    {
                        "from": old.external_task_id,
                        "from_local_id": old.local_id,
                        "from_status": old.status.value,
                        "external_task_id": new.external_task_id,
                        "local_id": new.local_id,
                    }
                    for old, new in made
                ],
                "skipped_already_retried": [t.external_task_id for t in skipped],
            }
        )
        return
    out = console()
    if made:
        _print_table(
            ("retries", "was", "reason", "new task", "new external_task_id"),
            [
                (
                    f"#{old.local_id} {old.external_task_id}",
                    old.status.value,
                    old.status_msg,
                    f"#{new.local_id}",
                    new.external_task_id,
                )
                for old, new in made
            ],
            title=f"{len(made)} tasks queued again",
        )
    if skipped:
        out.print(
            f"{len(skipped)} skipped: already retried (e.g. `klingwatch show "
            f"{skipped[0].external_task_id}`)"
        )
    if not made:
        out.print("nothing to retry")
        return
    out.print("queued; run `klingwatch watch` to send them as slots free up")
