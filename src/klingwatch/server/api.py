"""The JSON API under ``/api`` (OpenAPI at ``/docs``), guarded by ``KLINGWATCH_API_TOKEN``.

=================================== ============================================================
``GET  /api/batches``               every batch with counts, progress and ETA
``GET  /api/tasks``                 tasks, filtered (status, batch, product, model, since_ms,
                                    until_ms, q = text in the prompt) and paged (limit, offset),
                                    newest first
``GET  /api/tasks/{ref}``           one task (local id, external id or Kling id) with its timeline
                                    and downloads
``GET  /api/tasks/{ref}/files/{i}`` a downloaded result file (:mod:`klingwatch.server.media`)
``GET  /api/stats``                 counts, slots, durations, throughput, alerts, callbacks
``GET  /api/stuck``                 active tasks marked stuck, with the reason
``GET  /api/failed``                failed and rejected tasks with their reasons, newest first
``GET  /api/events``                changes after ``after_id`` (oldest first), for scripts
``GET  /api/events/stream``         the same as server-sent events, live
``POST /api/tasks/{ref}/retry``     queue a new task with the same request (final tasks only;
                                    a succeeded one with ``{"force": true}``)
``POST /api/track``                 follow a task created elsewhere, by its Kling ``task_id``
``POST /api/resume``                resume paused submissions and clear the account alerts
=================================== ============================================================

Every number a request may carry is bounded in the schema, and every error answers
``{"detail": "..."}`` with a 4xx (:mod:`klingwatch.server.deps`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from klingwatch.kling.errors import ConfigurationError, KlingError, TaskNotFound
from klingwatch.monitor.expiry import expires_at
from klingwatch.monitor.retries import RetryRefused
from klingwatch.operations import TaskQuery
from klingwatch.server import actions
from klingwatch.server.auth import require_token
from klingwatch.server.deps import (
    ERRORS,
    MAX_ID,
    NOT_FOUND,
    EpochMs,
    ErrorOut,
    FilterText,
    State,
    TaskRef,
    find_task,
)
from klingwatch.server.metrics import PACK_EXHAUSTED
from klingwatch.server.overview import (
    Overview,
    by_product,
    histogram,
    percentile,
)
from klingwatch.server.schemas import (
    AlertOut,
    BatchOut,
    DownloadOut,
    DurationGroup,
    EngineOut,
    EventOut,
    EventPage,
    ResumeOut,
    RetryIn,
    RetryOut,
    StatsOut,
    TaskDetail,
    TaskOut,
    TaskPage,
    ThroughputOut,
    TrackIn,
    TrackOut,
    task_fields,
)
from klingwatch.server.state import AppState
from klingwatch.store import DownloadRecord, EventRecord, LocalStatus, TaskRecord
from klingwatch.timestamps import stamp

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], tags=["api"], responses=ERRORS
)
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


async def with_files(state: AppState, tasks: list[TaskRecord]) -> list[TaskOut]:
    """``tasks`` as listed, their media pointing at downloaded copies (only a succeeded task has
    files, so only those are looked up)."""
    files: dict[int, list[DownloadRecord]] = {
        t.local_id: await state.ledger.downloads(t.local_id)
        for t in tasks
        if t.status is LocalStatus.SUCCEED
    }
    return [TaskOut.of(t, files.get(t.local_id, ())) for t in tasks]


def batch_out(ov: Overview, name: str, created_at: float, download_dir: str | None) -> BatchOut:
    figures = ov.batches.get(name)
    counts = dict(figures.counts) if figures else {}
    total = sum(counts.values())
    done = sum(n for s, n in counts.items() if s.is_final)
    eta = figures.eta if figures else None
    rate = eta.per_minute if eta is not None else None
    seconds = eta.seconds if eta is not None else None
    spent = {r.keys.get("batch"): r for r in ov.spend_by_batch.rows} if ov.spend_by_batch else {}
    spend = spent[name].to_dict() if name in spent else {}
    budget = figures.budget if figures else None
    return BatchOut.model_validate(
        {
            "name": name,
            **stamp("created_at", created_at),
            "download_dir": download_dir,
            "counts": {s: counts.get(s, 0) for s in LocalStatus},
            "total": total,
            "done": done,
            "succeeded": counts.get(LocalStatus.SUCCEED, 0),
            "failed": counts.get(LocalStatus.FAILED, 0) + counts.get(LocalStatus.REJECTED, 0),
            "progress": (done / total) if total else 0.0,
            "rate_per_min": rate,
            "eta_seconds": seconds,
            "units_estimated": spend.get("units_estimated", "0"),
            "units_spent": spend.get("units_spent", "0"),
            "max_units": budget.to_dict()["max_units"] if budget else None,
            "held": budget.held if budget else 0,
        }
    )


@router.get("/batches", response_model=list[BatchOut])
async def list_batches(state: State) -> list[BatchOut]:
    """Every batch, newest first, with counts by status, progress and an ETA."""
    ov = await state.overview.get()
    records = sorted(await state.ledger.batches(), key=lambda b: b.created_at, reverse=True)
    return [batch_out(ov, b.name, b.created_at, b.download_dir) for b in records]


@router.get("/tasks", response_model=TaskPage)
async def list_tasks(
    state: State,
    status: Annotated[list[LocalStatus] | None, Query(description="repeat for several")] = None,
    batch: FilterText | None = None,
    product: FilterText | None = None,
    model: FilterText | None = None,
    since_ms: Annotated[EpochMs | None, Query(description="queued at or after (epoch ms)")] = None,
    until_ms: Annotated[EpochMs | None, Query(description="queued before (epoch ms)")] = None,
    q: Annotated[FilterText | None, Query(description="text in the prompt")] = None,
    stuck: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TaskPage:
    """Tasks matching every filter given, newest first."""
    page = await state.ops.list_tasks(
        TaskQuery(
            status=tuple(status or ()),
            batch=batch,
            product=product,
            model=model,
            since=None if since_ms is None else since_ms / 1000,
            until=None if until_ms is None else until_ms / 1000,
            text=q,
            stuck=stuck,
            limit=limit,
            offset=offset,
        )
    )
    return TaskPage(
        items=await with_files(state, page.items), total=page.total, limit=limit, offset=offset
    )


@router.get("/tasks/{ref}", response_model=TaskDetail, responses=NOT_FOUND)
async def get_task(ref: TaskRef, state: State) -> TaskDetail:
    """One task with its timeline (oldest first) and downloads; its media play the downloaded
    copies where there are any."""
    r = await find_task(state, ref)
    downloads = await state.ledger.downloads(r.local_id)
    return TaskDetail.model_validate(
        {
            **task_fields(r, downloads),
            "request": r.request,
            "result": r.result,
            **stamp("sent_at", r.sent_at),
            "send_attempts": r.send_attempts,
            **stamp("last_polled_at", r.last_polled_at),
            **stamp("next_look_at", r.next_look_at),
            **stamp("expires_at", expires_at(r)),
            "timeline": [EventOut.of(e) for e in await state.ledger.events(r.local_id)],
            "downloads": [DownloadOut.of(d) for d in downloads],
        }
    )


@router.get("/stats", response_model=StatsOut)
async def stats(state: State) -> StatsOut:
    """Everything the dashboard's overview shows."""
    ov = await state.overview.get()
    width, start, ok, bad = ov.throughput(ov.at)
    groups = sorted(ov.durations.items(), key=lambda kv: -len(kv[1].total))
    pause = await state.ops.pause_state()
    paused, reason = pause is not None, (pause.reason if pause is not None else None)
    code = pause.code if pause is not None else None
    return StatsOut.model_validate(
        {
            **stamp("generated_at", ov.at),
            "total": ov.total,
            "counts": {s: ov.counts.get(s, 0) for s in LocalStatus},
            "by_product": by_product(ov),
            "slots_in_use": dict(ov.slots_in_use),
            "stuck": len(ov.stuck),
            "paused": paused,
            "pause_reason": reason,
            "pause_code": code,
            "pack_exhausted": paused and code == PACK_EXHAUSTED,
            "alerts": [AlertOut.of(a) for a in await state.ledger.alerts(active=True)],
            "expiring_downloads": ov.expiring,
            "durations": [
                DurationGroup(
                    product=product,
                    model=model or None,
                    mode=mode or None,
                    n=len(g.total) or len(g.run),
                    queue_p50_seconds=percentile(g.queue, 0.5),
                    run_p50_seconds=percentile(g.run, 0.5),
                    run_p95_seconds=percentile(g.run, 0.95),
                    bounds_seconds=[float(b) for b in state.duration_bounds],
                    counts=histogram(g.total or g.run, state.duration_bounds),
                )
                for (product, model, mode), g in groups
                if g.total or g.run
            ],
            "throughput": ThroughputOut.model_validate(
                {
                    "bucket_seconds": width,
                    **stamp("start_at", start),
                    "succeeded": ok,
                    "failed": bad,
                }
            ),
            "callbacks": dict(state.metrics.callback_counts),
            "engine": engine_out(state),
        }
    )


def engine_out(state: AppState) -> EngineOut | None:
    """The engine's counters (``None`` when this process runs no engine and no client)."""
    monitor, client = state.monitor, state.client
    if monitor is None and client is None:
        return None
    stats = client.stats if client is not None else None
    return EngineOut(
        running=state.engine is not None and not state.engine.done(),
        requests=stats.requests if stats is not None else 0,
        retries=stats.retries if stats is not None else 0,
        sweeps=monitor.sweeps if monitor is not None else 0,
        looks=monitor.looks if monitor is not None else 0,
        changes=monitor.changes if monitor is not None else 0,
        errors=monitor.errors if monitor is not None else 0,
    )


@router.get("/stuck", response_model=list[TaskOut])
async def stuck(state: State) -> list[TaskOut]:
    """Active tasks the engine marked stuck, with ``stuck_reason``."""
    return await with_files(state, (await state.overview.get()).stuck)


@router.get("/failed", response_model=list[TaskOut])
async def failed(state: State, limit: Limit = 50) -> list[TaskOut]:
    """Failed and rejected tasks, newest first, with ``status_msg`` (``/api/stats`` counts them
    all; ``/api/tasks?status=failed&status=rejected`` pages through them)."""
    return await with_files(state, (await state.overview.get()).failed[:limit])


async def event_page(state: AppState, after_id: int | None, limit: int) -> EventPage:
    if after_id is None:
        # The newest ``limit`` events, oldest first.
        events = sorted(await state.ledger.recent_events(limit=limit), key=lambda e: e.id)
    else:
        events = sorted(
            await state.ledger.recent_events(limit=limit, after_id=after_id), key=lambda e: e.id
        )
    return EventPage(
        items=await with_tasks(state, events), last_id=events[-1].id if events else after_id
    )


async def with_tasks(state: AppState, events: list[EventRecord]) -> list[EventOut]:
    """Events with the task each is about (external id, product, batch: they never change, so
    they are remembered across calls and every open stream does not re-read them)."""
    out = []
    for e in events:
        task = None
        if e.local_id is not None:
            task = state.task_labels.get(e.local_id)
            if task is None:
                task = await state.ledger.task(e.local_id)
                if task is not None:
                    state.remember_task(task)
        out.append(EventOut.of(e, task))
    return out


@router.get("/events", response_model=EventPage)
async def events(
    state: State,
    after_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Limit = 50,
) -> EventPage:
    """Recorded changes after ``after_id`` (oldest first); without it, the latest ``limit``."""
    return await event_page(state, after_id, limit)


@router.get("/events/stream", response_class=StreamingResponse)
async def event_stream(request: Request, state: State) -> StreamingResponse:
    """Server-sent events: one ``change`` message per recorded change, as they happen."""
    start = (await event_page(state, None, 1)).last_id or 0

    async def stream() -> AsyncIterator[str]:
        after = start
        yield "retry: 3000\n\n"
        while not state.stopping.is_set() and not await request.is_disconnected():
            page = await event_page(state, after, 200)
            for item in page.items:
                yield f"id: {item.id}\nevent: change\ndata: {json.dumps(item.model_dump())}\n\n"
            after = page.last_id or after
            if not page.items:
                yield ": keep-alive\n\n"
            # A browser's pace, in wall-clock time; not engine time (nothing is scheduled here).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.stopping.wait(), timeout=state.stream_interval)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/tasks/{ref}/retry",
    response_model=RetryOut,
    status_code=201,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorOut, "description": "in flight, or succeeded without force"},
    },
)
async def retry(
    ref: TaskRef, state: State, body: Annotated[RetryIn | None, Body()] = None
) -> RetryOut:
    """Queue a new task with the same request as a failed or rejected one (a succeeded one only
    with ``{"force": true}``: the retry is a new task that Kling bills again)."""
    record = await find_task(state, ref)
    try:
        new = await actions.retry(state, record, force=body is not None and body.force)
    except RetryRefused as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return RetryOut(retry_of=record.local_id, task=TaskOut.of(new))


@router.post(
    "/track",
    response_model=TrackOut,
    status_code=201,
    responses={
        404: {"model": ErrorOut, "description": "Kling has no such task"},
        502: {"model": ErrorOut, "description": "Kling did not answer the lookup"},
    },
)
async def track(body: TrackIn, state: State) -> TrackOut:
    """Follow a task created elsewhere (by its Kling ``task_id``); it is read once on Kling
    first when this server has Kling credentials (404 if Kling does not know it)."""
    try:
        record = await actions.track(state, body)
    except TaskNotFound as exc:
        raise HTTPException(status_code=404, detail=f"Kling has no such task: {exc}") from None
    except ConfigurationError as exc:  # an unknown product, say
        raise HTTPException(status_code=422, detail=str(exc)) from None
    except KlingError as exc:  # Kling itself failed to answer: the gateway's error, not ours
        raise HTTPException(status_code=502, detail=f"Kling did not answer: {exc}") from None
    return TrackOut(local_id=record.local_id, task=TaskOut.of(record))


@router.post("/resume", response_model=ResumeOut)
async def resume(state: State) -> ResumeOut:
    """Resume paused submissions (after topping up the pack, say) and clear account alerts."""
    cleared = await actions.resume(state)
    return ResumeOut(paused=await state.ops.pause_state() is not None, cleared_alerts=cleared)
