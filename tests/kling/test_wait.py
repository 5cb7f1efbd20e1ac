"""KlingClient.wait on a manual clock: cadence, deadline, on_update, passing failures."""

from __future__ import annotations

import itertools
from datetime import timedelta

import httpx
import pytest
from kling_world import NEW, answering, kling_world

from klingwatch.kling.envelope import dumps, success
from klingwatch.kling.errors import (
    AuthenticationError,
    KlingConnectionError,
    TaskNotFound,
    WaitTimeout,
)
from klingwatch.kling.models import Task, TaskStatus
from klingwatch.kling.pacing import CadencePolicy
from klingwatch.sandbox import Answer

POLICY = CadencePolicy()  # what wait() follows, as the engine does


async def test_wait_returns_the_finished_task_having_seen_every_status() -> None:
    world = kling_world()
    made = world.seed(queue=10, run=60)
    seen: list[TaskStatus] = []
    async with world.client() as kling:
        done = await kling.wait(
            "text2video", made.task_id, on_update=lambda t: seen.append(t.status)
        )

    assert done.status is TaskStatus.SUCCEED
    assert done.result_urls == [world.video_url(made)]
    assert seen == [TaskStatus.SUBMITTED, TaskStatus.PROCESSING, TaskStatus.SUCCEED]


async def test_cadence_looks_at_once_then_early_then_paced_within_bounds() -> None:
    world = kling_world()
    made = world.seed(queue=10, run=60)
    start = world.clock.time()
    async with world.client() as kling:
        done = await kling.wait("text2video", made.task_id)

    looks = [t - start for t in world.recorder.times]
    gaps = [b - a for a, b in itertools.pairwise(looks)]
    first, jitter = POLICY.first_look, POLICY.jitter
    assert looks[0] == 0  # the first look is immediate
    assert first * (1 - jitter) <= looks[1] <= first * (1 + jitter)  # a quick early look
    assert all(POLICY.floor <= g <= POLICY.ceiling for g in gaps)
    finished_at = 70
    assert looks[-1] - finished_at <= POLICY.dense_max * (1 + jitter)  # seen soon after it ended
    assert len(looks) <= 12  # a 70 s task, not a look every second
    assert done.is_terminal


async def test_a_failed_task_is_returned_with_its_reason() -> None:
    world = kling_world()
    made = world.seed(queue=1, run=2, fail="Image pixel is invalid")
    async with world.client() as kling:
        done = await kling.wait("text2video", made.task_id)
    assert done.status is TaskStatus.FAILED
    assert done.status_msg == "Image pixel is invalid"


async def test_an_async_on_update_is_awaited_once_per_change() -> None:
    world = kling_world()
    made = world.seed(queue=10, run=60)
    calls: list[tuple[TaskStatus, float]] = []

    async def record(task: Task) -> None:
        calls.append((task.status, world.clock.time()))

    async with world.client() as kling:
        await kling.wait("text2video", made.task_id, on_update=record)
    assert [s for s, _ in calls] == [
        TaskStatus.SUBMITTED,
        TaskStatus.PROCESSING,
        TaskStatus.SUCCEED,
    ]


async def test_the_deadline_raises_wait_timeout_carrying_the_last_task_seen() -> None:
    world = kling_world()
    made = world.seed(queue=10, run=3600)
    start = world.clock.time()
    async with world.client() as kling:
        with pytest.raises(WaitTimeout) as info:
            await kling.wait("text2video", made.task_id, deadline=timedelta(minutes=5))

    assert isinstance(info.value.task, Task)
    assert info.value.task.status is TaskStatus.PROCESSING
    assert world.recorder.times[-1] - start == pytest.approx(300)  # a last look at the deadline
    assert "processing" in str(info.value)
    assert "5m" in str(info.value)


async def test_a_task_already_finished_costs_one_look() -> None:
    world = kling_world()
    made = world.seed(queue=0, run=0)
    async with world.client() as kling:
        done = await kling.wait("text2video", made.task_id, deadline=60)
    assert done.status is TaskStatus.SUCCEED
    assert len(world.requests) == 1


async def test_passing_failures_are_waited_through() -> None:
    world = kling_world()
    made = world.seed(queue=0, run=30)
    # After a first answer, more 5000s than one read's retry policy absorbs: wait() keeps
    # looking anyway.
    world.script.on_read(made.task_id, "created")  # the first look: answered as usual
    world.script.on_read(made.task_id, Answer.error(5000, "internal"), times=7)
    async with world.client() as kling:
        done = await kling.wait("text2video", made.task_id)
    assert done.status is TaskStatus.SUCCEED
    assert world.sandbox.script.counts["read error 500/5000"] == 7


async def test_a_first_look_that_fails_raises_its_error_after_the_read_retries() -> None:
    sent: list[httpx.Request] = []

    def refused(request: httpx.Request) -> httpx.Response:
        sent.append(request)  # no server there at all
        raise httpx.ConnectError("connection refused")

    async with answering(refused) as kling:
        with pytest.raises(KlingConnectionError, match="cannot connect"):
            await kling.wait("text2video", "1", deadline=3600)
    assert len(sent) == 5  # the default read policy's attempts, then the error


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        (None, TaskNotFound),  # the sandbox has no task "1": 400/1201, as Kling says it
        (Answer.error(1002, "bad"), AuthenticationError),
    ],
)
async def test_errors_that_cannot_pass_end_the_wait(
    answer: Answer | None, cls: type[Exception]
) -> None:
    world = kling_world()
    if answer is not None:
        world.script.on_read("1", answer)
    async with world.client() as kling:
        with pytest.raises(cls):
            await kling.wait("text2video", "1")
    assert len(world.requests) == 1


async def test_new_standard_tasks_are_waited_for_through_tasks() -> None:
    world = kling_world()
    made = world.seed(NEW, queue=2, run=20)
    async with world.client(api_key=True) as kling:
        done = await kling.wait(NEW, made.task_id)
    assert done.status is TaskStatus.SUCCEED
    assert {r.url.path for r in world.requests} == {"/tasks"}


async def test_repeated_or_stale_statuses_do_not_call_on_update() -> None:
    world = kling_world()
    made = world.seed(queue=0, run=600)  # processing through the first looks
    processing = world.payload(made)
    assert processing["task_status"] == "processing"
    stale = {**processing, "task_status": "submitted"}  # an older status than already seen
    world.script.on_read(made.task_id, "created", times=2)  # processing, processing
    world.script.on_read(made.task_id, Answer.raw(200, dumps(success(stale))))
    updates: list[TaskStatus] = []
    async with world.client() as kling:
        await kling.wait("text2video", made.task_id, on_update=lambda t: updates.append(t.status))
    assert len(world.requests) >= 4
    assert world.script.pending()["reads"] == {}  # the stale answer was given
    assert updates == [TaskStatus.PROCESSING, TaskStatus.SUCCEED]
