"""What the MCP tools answer: pydantic models, so every answer is structured content with a JSON
schema the client sees in ``tools/list``.

Answers are kept short for a model's context: prompts and reasons are cut to
:data:`TEXT_LIMIT` characters, lists are paged or capped (and say so), and no raw request or
Kling answer is ever included.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from klingwatch.operations import BatchStatus, StatusReport, TaskDetail, TaskPage, WaitResult
from klingwatch.operations.queries import prompt_of, result_urls
from klingwatch.store import EventRecord, LocalStatus, TaskRecord
from klingwatch.store.budget import format_units
from klingwatch.timestamps import epoch_ms, iso_from_ms

__all__ = [
    "TEXT_LIMIT",
    "BatchOut",
    "EventOut",
    "PlannedTask",
    "RetryOut",
    "SpendOut",
    "StatusOut",
    "SubmitOut",
    "TaskBrief",
    "TaskDetailOut",
    "TaskListOut",
    "WaitOut",
    "short",
    "units_text",
]

#: Longest prompt, reason or detail text in an answer.
TEXT_LIMIT = 120
#: Most timeline events in one task's answer (the newest are kept).
TIMELINE_LIMIT = 100
#: Most result URLs listed for one task.
URL_LIMIT = 4


def short(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """``text`` cut to ``limit`` characters with an ellipsis (``None`` stays ``None``)."""
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: Units as people write them (``10``, never ``1E+1``): the one formatter every face uses.
units_text = format_units


def _iso(seconds: float | None) -> str | None:
    return iso_from_ms(epoch_ms(seconds))


class TaskBrief(BaseModel):
    """One task, in a line's worth of fields."""

    local_id: int
    external_task_id: str
    task_id: str | None = Field(description="Kling's task id, once Kling created it")
    batch: str
    product: str
    model: str | None
    status: LocalStatus
    status_msg: str | None = Field(description="why it failed or was rejected (cut short)")
    stuck: bool
    prompt: str | None = Field(description="the prompt, cut short")
    queued_at: str | None = Field(description="ISO-8601, UTC")
    finished_at: str | None
    units: str | None = Field(description="units Kling deducted, once it said")
    result_urls: list[str] = Field(description=f"the first {URL_LIMIT} result URLs")

    @classmethod
    def of(cls, t: TaskRecord) -> TaskBrief:
        return cls(
            local_id=t.local_id,
            external_task_id=t.external_task_id,
            task_id=t.task_id,
            batch=t.batch,
            product=t.product,
            model=t.model,
            status=t.status,
            status_msg=short(t.status_msg),
            stuck=t.stuck,
            prompt=short(prompt_of(t.request)),
            queued_at=_iso(t.queued_at),
            finished_at=_iso(t.finished_at),
            units=t.units,
            result_urls=result_urls(t.result)[:URL_LIMIT],
        )


class TaskListOut(BaseModel):
    """One page of tasks; call again with ``offset=next_offset`` for the next."""

    items: list[TaskBrief]
    total: int = Field(description="tasks matching, over all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(description="the next page's offset; null on the last page")

    @classmethod
    def of(cls, page: TaskPage) -> TaskListOut:
        return cls(
            items=[TaskBrief.of(t) for t in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
            next_offset=page.next_offset,
        )


class BatchOut(BaseModel):
    """One batch's counts and when it will be done."""

    name: str
    created_at: str | None
    counts: dict[str, int] = Field(description="tasks by status (statuses with none left out)")
    total: int
    done: int
    eta_seconds: float | None = Field(description="until every task is final; null: unknown")
    eta_basis: str

    @classmethod
    def of(cls, b: BatchStatus) -> BatchOut:
        return cls(
            name=b.name,
            created_at=_iso(b.created_at),
            counts={s.value: n for s, n in b.counts.items()},
            total=b.total,
            done=b.done,
            eta_seconds=b.eta.seconds,
            eta_basis=b.eta.basis.value,
        )


class StatusOut(BaseModel):
    """Where everything (or one batch) stands."""

    batch: str | None
    total: int
    counts: dict[str, int]
    active: int = Field(description="sent and not final yet")
    stuck: int
    eta_seconds: float | None
    eta_basis: str
    oldest_active: dict[str, Any] | None
    expiring_results: int = Field(description="results Kling deletes soon, not downloaded yet")
    results_lost: int
    alerts: list[str] = Field(description="e.g. submissions paused, and why")
    batches: list[BatchOut] = Field(description="the newest batches (or the one asked for)")

    @classmethod
    def of(cls, r: StatusReport) -> StatusOut:
        o = r.overall
        return cls(
            batch=o.batch,
            total=o.total,
            counts={s: n for s, n in o.counts.items() if n},
            active=o.active,
            stuck=o.stuck,
            eta_seconds=o.eta_seconds,
            eta_basis=o.eta_basis,
            oldest_active=o.oldest_active,
            expiring_results=len(o.expiring),
            results_lost=o.results_lost,
            alerts=[m for m in (short(a) for a in r.alerts) if m],
            batches=[BatchOut.of(b) for b in r.batches],
        )


class EventOut(BaseModel):
    """One line of a task's timeline: a status change or a note."""

    at: str | None
    from_status: LocalStatus | None
    to_status: LocalStatus
    source: str = Field(description="what reported it: create, get, list, callback, ...")
    detail: str | None

    @classmethod
    def of(cls, e: EventRecord) -> EventOut:
        return cls(
            at=_iso(e.at),
            from_status=e.from_status,
            to_status=e.to_status,
            source=e.source.value,
            detail=short(e.detail),
        )


class TaskDetailOut(BaseModel):
    """One task with its timeline (oldest first), files and retry lineage."""

    task: TaskBrief
    mode: str | None
    duration: str | None
    stuck_reason: str | None
    sent_at: str | None
    polls: int
    timeline: list[EventOut]
    timeline_cut: int = Field(description=f"older events left out (at most {TIMELINE_LIMIT} kept)")
    files: list[str] = Field(description="downloaded result files on disk")
    retries_of: list[int] = Field(description="local ids this task retries, oldest first")
    retried_by: list[int] = Field(description="local ids that retry this task")

    @classmethod
    def of(cls, d: TaskDetail) -> TaskDetailOut:
        t = d.task
        kept = d.events[-TIMELINE_LIMIT:]
        return cls(
            task=TaskBrief.of(t),
            mode=t.mode,
            duration=t.duration,
            stuck_reason=short(t.stuck_reason),
            sent_at=_iso(t.sent_at),
            polls=t.polls,
            timeline=[EventOut.of(e) for e in kept],
            timeline_cut=len(d.events) - len(kept),
            files=[f.path for f in d.downloads if f.path and f.state == "complete"],
            retries_of=[r.local_id for r in d.retries_of],
            retried_by=[r.local_id for r in d.retried_by],
        )


class WaitOut(BaseModel):
    """The tasks waited for, as last seen."""

    done: bool = Field(description="true: every task is final")
    waited_seconds: float
    tasks: list[TaskBrief]
    still_running: list[str] = Field(description="external ids of tasks not final yet")
    message: str

    @classmethod
    def of(cls, w: WaitResult) -> WaitOut:
        running = [t.external_task_id for t in w.running]
        if w.done:
            message = f"all {len(w.tasks)} tasks are final"
        else:
            message = (
                f"{len(running)} of {len(w.tasks)} tasks still running after "
                f"{w.waited:g} s; call wait_for again to keep waiting"
            )
        return cls(
            done=w.done,
            waited_seconds=w.waited,
            tasks=[TaskBrief.of(t) for t in w.tasks],
            still_running=running,
            message=message,
        )


class PlannedTask(BaseModel):
    """One validated request of a submit."""

    request: int = Field(description="its position in the requests given, from 1")
    external_task_id: str = Field(description="the task's name: use it with show_task/wait_for")
    product: str
    model: str | None
    mode: str | None
    duration: str | None
    slot_cost: int
    estimated_units: str
    prompt: str | None
    status: LocalStatus | None = Field(None, description="once sent: where it stands")
    task_id: str | None = Field(None, description="once sent: Kling's task id")


class SubmitOut(BaseModel):
    """What a submit did (or, on a dry run, would do)."""

    batch: str
    dry_run: bool
    sent: bool = Field(description="true only when tasks were queued for sending")
    tasks: list[PlannedTask] = Field(description="the validated requests (the first 50)")
    estimated_units: str
    estimate_note: str
    slots_needed: dict[str, int]
    warnings: list[str]
    queued: int = Field(0, description="tasks newly added to the ledger")
    already_queued: int = Field(0, description="already in the ledger: not added twice")
    sent_now: int = Field(0, description="created on Kling by this call")
    counts: dict[str, int] = Field(default_factory=dict, description="the batch by status now")
    paused: str | None = Field(None, description="why Kling paused sending, if it did")
    message: str


class RetryOut(BaseModel):
    """What a retry_failed did (or, on a dry run, would do)."""

    batch: str
    dry_run: bool
    retried: bool
    tasks: list[TaskBrief] = Field(description="the failed/rejected tasks (would be) retried")
    new_tasks: list[str] = Field(description="external ids of the tasks queued for them")
    skipped: list[str] = Field(description="already retried once: retry the newest attempt")
    estimated_units: str
    message: str


class SpendOut(BaseModel):
    """Units (estimated and spent) and cash, grouped as asked, with the total."""

    by: list[str]
    rows: list[dict[str, Any]]
    total: dict[str, Any]
