"""The API behind the dashboard's batch page (``/batches/{name}``) and its spend panel:

=========================================== ====================================================
``GET  /api/batches/{name}``                where the batch stands: progress, ETA, units
                                            estimated and spent, its budget cap, failures
                                            grouped by reason, spend per day
``GET  /api/batches/{name}/tasks``          its tasks (the page sorts them by any column)
``POST /api/batches/{name}/retry-failed``   queue every failed and rejected task again as new
                                            tasks; Kling bills them again, so only with
                                            ``{"confirm": true}`` (409 says what it would cost)
``POST /api/batches/{name}/download``       collect every succeeded result into the batch's
                                            folder, in the background (202)
``GET  /api/spend?by=batch,day``            units estimated and spent, cash, per group (as
                                            ``klingwatch spend --json``)
=========================================== ====================================================

Every write goes through the operations layer and the request guard's rules (same origin, JSON).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from klingwatch.errors import ConfigurationError
from klingwatch.operations import BatchReport, SpendRequestError
from klingwatch.operations.results import SPEND_KEYS
from klingwatch.server.auth import require_token
from klingwatch.server.deps import ERRORS, MAX_TEXT, NO_NUL, ErrorOut, State
from klingwatch.server.schemas import TaskOut
from klingwatch.store import LocalStatus
from klingwatch.store.budget import format_units

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], tags=["api"], responses=ERRORS
)

BatchName = Annotated[str, Path(max_length=MAX_TEXT, pattern=NO_NUL, description="batch name")]
NO_BATCH: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorOut, "description": "no such batch"}
}
#: Tasks the batch page lists at most (newest first beyond it: the rest are on /tasks).
PAGE_TASKS = 5000
# Downloads started from the page, kept referenced until they end.
_running: set[asyncio.Task[object]] = set()


class Amount(BaseModel):
    currency: str | None
    amount: str


class DaySpend(BaseModel):
    day: str = Field(description="YYYY-MM-DD (UTC) the tasks finished, else were sent or queued")
    tasks: int
    units_estimated: str
    units_spent: str


class Reason(BaseModel):
    reason: str
    tasks: int


class BatchPageOut(BaseModel):
    """One batch as its page shows it."""

    name: str
    counts: dict[LocalStatus, int]
    total: int
    done: int
    progress: float = Field(description="share of tasks in a final status, 0..1")
    eta_seconds: float | None
    eta_basis: str
    rate_per_min: float | None
    units_estimated: str = Field(description="units estimated when its tasks were queued")
    units_spent: str = Field(description="units Kling deducted (final_unit_deduction)")
    cash: list[Amount]
    max_units: str | None = Field(description="its budget cap in units, null when none")
    sent_estimate: str = Field(description="estimates of its tasks sent (what the cap counts)")
    held: int = Field(description="queued tasks the cap holds back")
    hold_reason: str | None
    failure_reasons: list[Reason]
    spend_by_day: list[DaySpend]
    download_dir: str | None


class RetryAllIn(BaseModel):
    confirm: bool = Field(default=False, description="yes, queue them again: Kling bills them")


class RetryAllOut(BaseModel):
    queued: int
    #: The new tasks' local ids.
    tasks: list[int]
    #: Failed tasks already retried once (their newest attempt is retried instead).
    skipped: int


class DownloadStarted(BaseModel):
    succeeded: int
    folder: str


async def _report(state: State, name: str) -> BatchReport:
    try:
        return await state.ops.batch_report(name)
    except SpendRequestError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/batches/{name}", response_model=BatchPageOut, responses=NO_BATCH)
async def batch_page(name: BatchName, state: State) -> BatchPageOut:
    """Where one batch stands."""
    r = await _report(state, name)
    spend = r.spend.to_dict()
    budget = r.budget
    return BatchPageOut(
        name=r.name,
        counts={s: r.counts.get(s, 0) for s in LocalStatus},
        total=r.total,
        done=r.done,
        progress=r.done / r.total if r.total else 0.0,
        eta_seconds=r.eta.seconds,
        eta_basis=r.eta.basis.value,
        rate_per_min=r.eta.per_minute,
        units_estimated=spend["units_estimated"],
        units_spent=spend["units_spent"],
        cash=[Amount(**c) for c in spend["cash"]],
        max_units=None if budget.max_units is None else format_units(budget.max_units),
        sent_estimate=format_units(budget.sent_estimate),
        held=budget.held,
        hold_reason=budget.hold_reason,
        failure_reasons=[Reason(reason=k, tasks=n) for k, n in r.failure_reasons],
        spend_by_day=[
            DaySpend(
                day=row.keys["day"] or "",
                tasks=row.tasks,
                units_estimated=format_units(row.units_estimated),
                units_spent=format_units(row.units_spent),
            )
            for row in r.spend_by_day
        ],
        download_dir=r.download_dir or state.settings.download_dir,
    )


@router.get("/batches/{name}/tasks", response_model=list[TaskOut], responses=NO_BATCH)
async def batch_tasks(
    name: BatchName, state: State, limit: Annotated[int, Query(ge=1, le=PAGE_TASKS)] = PAGE_TASKS
) -> list[TaskOut]:
    """The batch's tasks, newest first (at most ``limit``)."""
    await _report(state, name)
    tasks = await state.ledger.tasks(batch=name, limit=limit, newest_first=True)
    return [TaskOut.of(t) for t in tasks]


@router.post(
    "/batches/{name}/retry-failed",
    response_model=RetryAllOut,
    status_code=201,
    responses={**NO_BATCH, 409: {"model": ErrorOut, "description": "not confirmed"}},
)
async def retry_failed(
    name: BatchName, state: State, body: Annotated[RetryAllIn | None, Body()] = None
) -> RetryAllOut:
    """Queue every failed and rejected task of the batch again, as new tasks (each is billed
    again): only with ``{"confirm": true}``; without it, 409 says how many and what they cost."""
    report = await _report(state, name)
    if body is None or not body.confirm:
        failed = report.counts.get(LocalStatus.FAILED, 0) + report.counts.get(
            LocalStatus.REJECTED, 0
        )
        raise HTTPException(
            status_code=409,
            detail=f"retrying queues {failed} failed task(s) of batch {name!r} again as new "
            'tasks that Kling bills again: send {"confirm": true} to go ahead',
        )
    result = await state.ops.retry(batch=name, failed=True, rejected=True)
    return RetryAllOut(
        queued=len(result.queued),
        tasks=[new.local_id for _, new in result.queued],
        skipped=len(result.skipped),
    )


@router.post(
    "/batches/{name}/download",
    response_model=DownloadStarted,
    status_code=202,
    responses={**NO_BATCH, 409: {"model": ErrorOut, "description": "no download folder"}},
)
async def download(name: BatchName, state: State) -> DownloadStarted:
    """Collect every succeeded result of the batch into its folder, in the background (files
    already complete are skipped)."""
    report = await _report(state, name)
    try:
        folder = state.ops.download_folder(report)
    except ConfigurationError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None

    async def run() -> object:
        try:
            return await state.ops.download_batch(name)
        except Exception:
            logger.exception("downloading batch %r failed", name)
            return None

    task: asyncio.Task[object] = asyncio.create_task(run(), name=f"klingwatch-download-{name}")
    _running.add(task)
    task.add_done_callback(_running.discard)
    return DownloadStarted(
        succeeded=report.counts.get(LocalStatus.SUCCEED, 0), folder=str(folder.absolute())
    )


_KEY = f"({'|'.join(SPEND_KEYS)})"


@router.get("/spend")
async def spend(
    state: State,
    by: Annotated[str, Query(max_length=100, pattern=f"^{_KEY}(,{_KEY})*$")] = "batch",
    batch: Annotated[str | None, Query(max_length=MAX_TEXT, pattern=NO_NUL)] = None,
) -> dict[str, object]:
    """Spend summed per group of ``by`` (comma-separated: batch, product, model, mode, day)."""
    report = await state.ops.spend(by=by.split(","), batch=batch)
    return report.to_dict()
