"""The MCP tools and resources: each one call of :class:`~klingwatch.operations.Operations`,
its answer one of :mod:`klingwatch.mcp.schemas`.

Nothing here spends money unless asked twice over: ``submit`` and ``retry_failed`` are dry runs
by default, and a real send or retry needs ``dry_run=false`` *and* ``confirm=true``; anything
less sends nothing, writes nothing and says how to confirm. Every mistake (a bad argument, an
unknown task, missing credentials) is a tool error whose message says what to fix, never a
traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from pydantic import Field

from klingwatch.errors import KlingwatchError
from klingwatch.mcp.schemas import (
    PlannedTask,
    RetryOut,
    SpendOut,
    StatusOut,
    SubmitOut,
    TaskBrief,
    TaskDetailOut,
    TaskListOut,
    WaitOut,
    short,
    units_text,
)
from klingwatch.monitor.estimate import ESTIMATE_NOTE, estimate_total, estimate_units
from klingwatch.monitor.intake import (
    DEFAULT_PRODUCT,
    BatchFile,
    IntakeLine,
    read_requests,
    to_new_task,
)
from klingwatch.operations import Operations, TaskPage, TaskQuery
from klingwatch.operations.queries import MAX_PAGE, MAX_WAIT_SECONDS, TaskSort, prompt_of
from klingwatch.store import LocalStatus
from klingwatch.store.errors import UnknownTask

__all__ = ["MAX_LIST", "Tools", "answers"]

#: Most tasks one ``list_tasks`` page holds.
MAX_LIST = 200
#: Validated requests echoed back by ``submit``; the rest are counted.
PLAN_SHOWN = 50
#: The batch of a ``submit`` that names none.
DEFAULT_BATCH = "mcp"
#: Most requests one ``submit`` takes.
MAX_REQUESTS = 1000
#: Spend rows returned (the total always covers every row).
MAX_SPEND_ROWS = 100

_P = ParamSpec("_P")
_T = TypeVar("_T")

BatchName = Annotated[str, Field(min_length=1, max_length=200, description="the batch's name")]
OptionalBatch = Annotated[
    str | None, Field(max_length=200, description="only this batch (default: every batch)")
]
DryRun = Annotated[
    bool, Field(description="true (the default): validate and estimate only, send nothing")
]
Confirm = Annotated[
    bool, Field(description="must be true, with dry_run=false, for anything to be sent")
]


def answers(fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Awaitable[_T]]:
    """Turn klingwatch's own errors into tool errors with their one-line message (the model
    reads it and can fix its call), never an opaque crash or a traceback."""

    @functools.wraps(fn)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await fn(*args, **kwargs)
        except KlingwatchError as exc:
            raise ToolError(str(exc)) from None

    return wrapper


def _confirm_hint(tool: str) -> str:
    return f"call {tool} again with the same arguments and dry_run=false, confirm=true"


class Tools:
    """The tools and resources over one :class:`Operations` (see the module docstring)."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    # -- reading -----------------------------------------------------------------------------
    @answers
    async def status(self, batch: OptionalBatch = None) -> StatusOut:
        """Where everything (or one batch) stands: counts by status, tasks in flight and stuck,
        an ETA, alerts (e.g. submissions paused), and each recent batch's counts and ETA."""
        return StatusOut.of(await self.ops.status(batch, max_batches=20))

    @answers
    async def list_tasks(
        self,
        status: Annotated[
            list[LocalStatus] | None, Field(description="only these statuses")
        ] = None,
        batch: OptionalBatch = None,
        product: Annotated[str | None, Field(max_length=200)] = None,
        model: Annotated[str | None, Field(max_length=200)] = None,
        text: Annotated[
            str | None, Field(max_length=500, description="text in the prompt (any case)")
        ] = None,
        stuck: Annotated[bool | None, Field(description="only stuck (or unstuck) tasks")] = None,
        since_ms: Annotated[
            int | None, Field(ge=0, description="queued at or after (epoch ms)")
        ] = None,
        until_ms: Annotated[int | None, Field(ge=0, description="queued before (epoch ms)")] = None,
        sort: Annotated[TaskSort, Field(description="the column to order by")] = "id",
        descending: Annotated[bool, Field(description="newest (largest) first")] = True,
        limit: Annotated[int, Field(ge=1, le=MAX_LIST, description="tasks per page")] = 20,
        offset: Annotated[
            int, Field(ge=0, le=2**31 - 1, description="where the page starts (next_offset)")
        ] = 0,
    ) -> TaskListOut:
        """Tasks matching every filter given, a page at a time (pass next_offset as offset for
        the next page). Prompts and reasons are cut short; show_task has one task in full."""
        page = await self.ops.list_tasks(
            TaskQuery(
                status=tuple(status or ()),
                batch=batch,
                product=product,
                model=model,
                text=text,
                stuck=stuck,
                since=None if since_ms is None else since_ms / 1000,
                until=None if until_ms is None else until_ms / 1000,
                sort=sort,
                descending=descending,
                limit=limit,
                offset=offset,
            )
        )
        return TaskListOut.of(page)

    @answers
    async def show_task(
        self,
        task: Annotated[
            str,
            Field(min_length=1, max_length=200, description="local id, external id or Kling id"),
        ],
    ) -> TaskDetailOut:
        """One task with its timeline: every status change, when, and who reported it."""
        return TaskDetailOut.of(await self.ops.show_task(task))

    @answers
    async def stuck(
        self,
        batch: OptionalBatch = None,
        limit: Annotated[int, Field(ge=1, le=MAX_LIST)] = 50,
    ) -> TaskListOut:
        """Tasks in one status far past what their kind usually takes, with the reason. They
        are only flagged: klingwatch keeps watching them (nothing is cancelled)."""
        found = await self.ops.stuck(batch)
        return TaskListOut.of(TaskPage(found[:limit], len(found), limit, 0))

    @answers
    async def spend(
        self,
        by: Annotated[
            list[str], Field(max_length=4, description='group by these keys, e.g. ["batch"]')
        ] = ["batch"],  # noqa: B006 - pydantic copies defaults; this one is never mutated
        batch: OptionalBatch = None,
        since_ms: Annotated[
            int | None, Field(ge=0, description="only tasks queued since (epoch ms)")
        ] = None,
    ) -> SpendOut:
        """Units estimated and spent, and cash charged, grouped (by batch by default)."""
        report = (await self.ops.spend(by=tuple(by), batch=batch, since_ms=since_ms)).to_dict()
        return SpendOut(
            by=report["by"], rows=report["rows"][:MAX_SPEND_ROWS], total=report["total"]
        )

    # -- sending -----------------------------------------------------------------------------
    @answers
    async def submit(
        self,
        requests: Annotated[
            list[dict[str, Any]] | dict[str, Any] | str,
            Field(
                description='one request object, or a list: {"prompt": "...", ...} (JSON text '
                "of either is read too)"
            ),
        ],
        product: Annotated[
            str,
            Field(
                min_length=1,
                max_length=200,
                description='e.g. "text2video" (the default), "image2video"; a request\'s own '
                '"product" wins',
            ),
        ] = DEFAULT_PRODUCT,
        batch: Annotated[
            str, Field(min_length=1, max_length=200, description="the batch to queue them in")
        ] = DEFAULT_BATCH,
        dry_run: DryRun = True,
        confirm: Confirm = False,
        max_units: Annotated[
            Decimal | None,
            Field(gt=0, description="budget cap of the batch in units: never sent past it"),
        ] = None,
    ) -> SubmitOut:
        """Validate requests for one product as `klingwatch submit` does and, only with
        dry_run=false and confirm=true, queue them in the ledger and send what Kling's free
        slots allow now. The default is a dry run: the validated requests and a unit estimate,
        nothing sent, nothing written. Each task is named by its external_task_id (derived from
        the batch and request, so the same call twice adds nothing)."""
        if isinstance(requests, str):
            requests = _json_requests(requests)
        items = requests if isinstance(requests, list) else [requests]
        if len(items) > MAX_REQUESTS:
            raise ToolError(f"{len(items)} requests: send at most {MAX_REQUESTS} per call")
        found = read_requests(items, batch=batch.strip(), product=product)
        _refuse_invalid(found, len(items))
        plan = _plan(found, dry_run=dry_run)
        if dry_run:
            note = " (confirm=true does nothing while dry_run is true)" if confirm else ""
            plan.message = (
                f"dry run: nothing was sent and nothing written{note}. {len(found.lines)} tasks, "
                f"≈ {plan.estimated_units} units. To send them, {_confirm_hint('submit')}."
            )
            return plan
        if not confirm:
            raise ToolError(
                f"not sent: sending {len(found.lines)} tasks (≈ {plan.estimated_units} units) "
                f"spends money, so it needs confirm=true; nothing was sent or written. To send "
                f"them, {_confirm_hint('submit')}."
            )
        return await self._send(found, plan, max_units)

    async def _send(
        self, found: BatchFile, plan: SubmitOut, max_units: Decimal | None
    ) -> SubmitOut:
        ops = self.ops
        ops.kling()  # no credentials: said before anything is written
        added = await ops.queue(
            found.batch, [to_new_task(line) for line in found.lines], max_units=max_units
        )
        submitter = await ops.send_once()
        overall = (await ops.status(found.batch, max_batches=1)).overall
        counts = overall.counts
        held = sum(h["held"] for h in overall.held)
        paused = await ops.pause_state()
        page = await ops.list_tasks(TaskQuery(batch=found.batch, limit=MAX_PAGE))
        recorded = {t.external_task_id: t for t in page.items}
        for item in plan.tasks:
            if (task := recorded.get(item.external_task_id)) is not None:
                item.status, item.task_id = task.status, task.task_id
        plan.sent = True
        plan.queued = len(added.added)
        plan.already_queued = len(added.existing)
        plan.sent_now = submitter.stats.created + submitter.stats.ambiguous
        plan.counts = {s: n for s, n in counts.items() if n}
        plan.paused = None if paused is None else short(paused.reason)
        waiting = counts.get(LocalStatus.QUEUED.value, 0)
        message = (
            f"batch {found.batch!r}: {plan.queued} tasks queued"
            + (
                f", {plan.already_queued} already in the ledger (not added again)"
                if plan.already_queued
                else ""
            )
            + f"; {plan.sent_now} created on Kling now."
        )
        if paused is not None:
            message += (
                f" Kling paused sending: {plan.paused}; fix it, then run `klingwatch resume`."
            )
        elif held:
            reason = overall.held[0]["reason"]
            message += (
                f" {held} held by the batch's budget cap ({reason}): raise it with "
                f"`klingwatch resume --raise-cap N --batch {found.batch}`."
            )
            if waiting > held:
                message += f" {waiting - held} wait for a free slot."
        elif waiting:
            message += f" {waiting} wait for a free slot."
        plan.message = message + (
            " A running `klingwatch serve` or `klingwatch watch` sends what is queued as slots "
            "free up and follows every task to its end; or call wait_for with the external ids."
        )
        return plan

    @answers
    async def retry_failed(
        self,
        batch: BatchName,
        include_rejected: Annotated[
            bool, Field(description="also retry tasks Kling rejected at create")
        ] = True,
        dry_run: DryRun = True,
        confirm: Confirm = False,
    ) -> RetryOut:
        """Queue a batch's failed (and rejected) tasks again as new linked tasks; succeeded
        tasks are never retried. A dry run (the default) lists what would be retried and the
        unit estimate; a real retry needs dry_run=false and confirm=true."""
        ops = self.ops
        picked = await ops.retry(batch=batch, failed=True, rejected=include_rejected, dry_run=True)
        todo = picked.would_retry
        units = units_text(estimate_total((t.product, t.request) for t in todo))
        skipped = [t.external_task_id for t in picked.skipped]
        if not todo:
            return RetryOut(
                batch=batch,
                dry_run=dry_run,
                retried=False,
                tasks=[],
                new_tasks=[],
                skipped=skipped,
                estimated_units="0",
                message=f"nothing to retry in batch {batch!r}",
            )
        if dry_run or not confirm:
            if not dry_run:
                raise ToolError(
                    f"not retried: retrying {len(todo)} tasks (≈ {units} units) spends money, "
                    f"so it needs confirm=true; nothing was queued. To retry them, "
                    f"{_confirm_hint('retry_failed')}."
                )
            return RetryOut(
                batch=batch,
                dry_run=True,
                retried=False,
                tasks=[TaskBrief.of(t) for t in todo[:PLAN_SHOWN]],
                new_tasks=[],
                skipped=skipped,
                estimated_units=units,
                message=f"dry run: {len(todo)} tasks would be retried (≈ {units} units); nothing "
                f"was queued. To retry them, {_confirm_hint('retry_failed')}.",
            )
        done = await ops.retry(batch=batch, failed=True, rejected=include_rejected)
        return RetryOut(
            batch=batch,
            dry_run=False,
            retried=True,
            tasks=[TaskBrief.of(old) for old, _ in done.queued[:PLAN_SHOWN]],
            new_tasks=[new.external_task_id for _, new in done.queued],
            skipped=[t.external_task_id for t in done.skipped],
            estimated_units=units_text(
                estimate_total((o.product, o.request) for o, _ in done.queued)
            ),
            message=f"{len(done.queued)} tasks queued again. A running `klingwatch serve` or "
            "`klingwatch watch` sends them; or call wait_for with the new external ids.",
        )

    @answers
    async def wait_for(
        self,
        tasks: Annotated[
            list[str] | str,
            Field(description="task names (external ids), local ids or Kling ids"),
        ],
        timeout: Annotated[  # noqa: ASYNC109 - the answer at the deadline is what still runs
            float,
            Field(ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait at most (max 600)"),
        ] = 60.0,
    ) -> WaitOut:
        """Wait until every task named is final (succeed, failed or rejected), at most timeout
        seconds; returns each task as last seen and which are still running. Without a running
        `klingwatch serve`/`watch`, it polls Kling itself while it waits."""
        names = [tasks] if isinstance(tasks, str) else list(tasks)
        if not names or len(names) > MAX_LIST:
            raise ToolError(f"name between 1 and {MAX_LIST} tasks to wait for")
        return WaitOut.of(await self.ops.wait_for(names, timeout))

    # -- resources ---------------------------------------------------------------------------
    async def batch_report(self, name: str) -> str:
        """A batch's report (JSON): its status, and its failed and stuck tasks with reasons."""
        found = await self.ops.status(name)
        if not found.batches:
            raise ResourceNotFoundError(f"no batch named {name!r} in the ledger")
        report = StatusOut.of(found)
        failed = await self.ops.list_tasks(
            TaskQuery(status=(LocalStatus.FAILED, LocalStatus.REJECTED), batch=name, limit=20)
        )
        body = {
            "status": report.model_dump(mode="json"),
            "failed": TaskListOut.of(failed).model_dump(mode="json"),
            "stuck": [TaskBrief.of(t).model_dump(mode="json") for t in await self.ops.stuck(name)][
                :20
            ],
        }
        return json.dumps(body, indent=1)

    async def task_timeline(self, name: str) -> str:
        """One task's timeline (JSON), as show_task answers it."""
        try:
            detail = await self.ops.show_task(name)
        except UnknownTask as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return TaskDetailOut.of(detail).model_dump_json(indent=1)


def _json_requests(text: str) -> list[Any] | dict[str, Any]:
    """Requests a client sent as JSON text instead of JSON."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ToolError(
            'requests must be a request object or a list of them, e.g. [{"prompt": "a red fox"}]'
        ) from None
    if not isinstance(value, list | dict):
        raise ToolError("requests must be a request object or a list of them")
    return value


def _refuse_invalid(found: BatchFile, given: int) -> None:
    if not found.problems:
        return
    shown = "\n".join(f"request {p.line}: {p.message}" for p in found.problems[:20])
    more = len(found.problems) - 20
    raise ToolError(
        f"{len(found.problems)} of {given} requests are invalid; nothing was queued or sent. "
        f"Fix them and call submit again:\n{shown}" + (f"\n(and {more} more)" if more > 0 else "")
    )


def _plan(found: BatchFile, *, dry_run: bool) -> SubmitOut:
    return SubmitOut(
        batch=found.batch,
        dry_run=dry_run,
        sent=False,
        tasks=[_planned(line) for line in found.lines[:PLAN_SHOWN]],
        estimated_units=units_text(estimate_total((x.product, x.request) for x in found.lines)),
        estimate_note=ESTIMATE_NOTE,
        slots_needed=found.slots_needed(),
        warnings=[f"request {w.line}: {w.message}" for w in found.warnings[:20]],
        message="",
    )


def _planned(line: IntakeLine) -> PlannedTask:
    return PlannedTask(
        request=line.line,
        external_task_id=line.external_task_id,
        product=line.product,
        model=line.model,
        mode=line.mode,
        duration=line.duration,
        slot_cost=line.slot_cost,
        estimated_units=units_text(estimate_units(line.product, line.request)),
        prompt=short(prompt_of(line.request)),
    )
