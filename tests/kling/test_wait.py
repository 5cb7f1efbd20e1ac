"""KlingClient.wait on a manual clock: cadence, deadline, on_update, passing failures."""

from __future__ import annotations

import itertools
from datetime import timedelta

import httpx
import pytest
from fakekling import FakeKling, envelope, error, make_client

from klingwatch.kling.errors import (
    AuthenticationError,
    KlingConnectionError,
    TaskNotFound,
    WaitTimeout,
)
from klingwatch.kling.models import Task, TaskStatus
from klingwatch.kling.pacing import CadencePolicy

POLICY = CadencePolicy()  # what wait() follows, as the engine does


async def test_wait_returns_the_finished_task_having_seen_every_status() -> None:
    fake = FakeKling()
    made = fake.add(queue=10, run=60)
    seen: list[TaskStatus] = []
    async with make_client(fake) as kling:
        done = await kling.wait("text2video", made.id, on_update=lambda t: seen.append(t.status))

    assert done.status is TaskStatus.SUCCEED
    assert done.result_urls == [f"https://cdn/{made.id}.mp4"]
    assert seen == [TaskStatus.SUBMITTED, TaskStatus.PROCESSING, TaskStatus.SUCCEED]


async def test_cadence_looks_at_once_then_early_then_paced_within_bounds() -> None:
    fake = FakeKling()
    made = fake.add(queue=10, run=60)
    start = fake.clock.time()
    async with make_client(fake) as kling:
        done = await kling.wait("text2video", made.id)

    looks = [t - start for t in fake.times]
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
    fake = FakeKling()
    made = fake.add(queue=1, run=2, fail_reason="Image pixel is invalid")
    async with make_client(fake) as kling:
        done = await kling.wait("text2video", made.id)
    assert done.status is TaskStatus.FAILED
    assert done.status_msg == "Image pixel is invalid"


async def test_an_async_on_update_is_awaited_once_per_change() -> None:
    fake = FakeKling()
    made = fake.add(queue=10, run=60)
    calls: list[tuple[TaskStatus, float]] = []

    async def record(task: Task) -> None:
        calls.append((task.status, fake.clock.time()))

    async with make_client(fake) as kling:
        await kling.wait("text2video", made.id, on_update=record)
    assert [s for s, _ in calls] == [
        TaskStatus.SUBMITTED,
        TaskStatus.PROCESSING,
        TaskStatus.SUCCEED,
    ]


async def test_the_deadline_raises_wait_timeout_carrying_the_last_task_seen() -> None:
    fake = FakeKling()
    made = fake.add(queue=10, run=3600)
    start = fake.clock.time()
    async with make_client(fake) as kling:
        with pytest.raises(WaitTimeout) as info:
            await kling.wait("text2video", made.id, deadline=timedelta(minutes=5))

    assert isinstance(info.value.task, Task)
    assert info.value.task.status is TaskStatus.PROCESSING
    assert fake.times[-1] - start == pytest.approx(300)  # a last look at the deadline
    assert "processing" in str(info.value)
    assert "5m" in str(info.value)


async def test_a_task_already_finished_costs_one_look() -> None:
    fake = FakeKling()
    made = fake.add(queue=0, run=0)
    async with make_client(fake) as kling:
        done = await kling.wait("text2video", made.id, deadline=60)
    assert done.status is TaskStatus.SUCCEED
    assert len(fake.requests) == 1


async def test_passing_failures_are_waited_through() -> None:
    fake = FakeKling()
    made = fake.add(queue=0, run=30)
    # After a first answer, more 5000s than one read's retry policy absorbs: wait() keeps
    # looking anyway.
    fake.script.append(httpx.Response(200, json=envelope(made.legacy(fake.now))))
    fake.script += [error(500, 5000, "internal")] * 7
    async with make_client(fake) as kling:
        done = await kling.wait("text2video", made.id)
    assert done.status is TaskStatus.SUCCEED


async def test_a_first_look_that_fails_raises_its_error_after_the_read_retries() -> None:
    fake = FakeKling()
    fake.script += [httpx.ConnectError("connection refused")] * 100
    async with make_client(fake) as kling:
        with pytest.raises(KlingConnectionError, match="cannot connect"):
            await kling.wait("text2video", "1", deadline=3600)
    assert len(fake.requests) == 5  # the default read policy's attempts, then the error


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        (error(400, 1201, "Task not found"), TaskNotFound),
        (error(401, 1002, "bad"), AuthenticationError),
    ],
)
async def test_errors_that_cannot_pass_end_the_wait(
    answer: httpx.Response, cls: type[Exception]
) -> None:
    fake = FakeKling()
    fake.script.append(answer)
    async with make_client(fake) as kling:
        with pytest.raises(cls):
            await kling.wait("text2video", "1")
    assert len(fake.requests) == 1


async def test_new_standard_tasks_are_waited_for_through_tasks() -> None:
    fake = FakeKling()
    made = fake.add("/text-to-video/kling-3.0-turbo", queue=2, run=20, new_standard=True)
    async with make_client(fake, api_key=True) as kling:
        done = await kling.wait("text-to-video/kling-3.0-turbo", made.id)
    assert done.status is TaskStatus.SUCCEED
    assert {r.url.path for r in fake.requests} == {"/tasks"}


async def test_repeated_or_stale_statuses_do_not_call_on_update() -> None:
    fake = FakeKling()
    made = fake.add(queue=0, run=10)
    processing = made.legacy(fake.now)
    fake.script += [
        httpx.Response(200, json=envelope(processing)),
        httpx.Response(200, json=envelope(processing)),
        httpx.Response(200, json=envelope({**processing, "task_status": "submitted"})),  # stale
    ]
    updates: list[TaskStatus] = []
    async with make_client(fake) as kling:
        await kling.wait("text2video", made.id, on_update=lambda t: updates.append(t.status))
    assert len(fake.requests) >= 4
    assert updates == [TaskStatus.PROCESSING, TaskStatus.SUCCEED]
