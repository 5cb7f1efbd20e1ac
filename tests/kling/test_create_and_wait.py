"""create_and_wait: one call, one task, even when the create's answer is lost."""

from __future__ import annotations

import httpx
import pytest
from kling_world import kling_world

from klingwatch.kling.client import MAX_CREATE_SENDS
from klingwatch.kling.errors import ContentPolicyError, KlingTimeout, ServerError
from klingwatch.kling.models import TaskStatus
from klingwatch.sandbox import Answer


async def test_a_lost_answer_is_recovered_by_external_id_without_a_resend() -> None:
    world = kling_world()
    world.script.on_create("c1", "created-then-drop")  # the task is made, the answer lost
    async with world.client() as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c1")

    assert done.status is TaskStatus.SUCCEED
    assert done.external_id == "c1"
    assert len(world.tasks) == 1
    assert len(world.recorder.calls("POST")) == 1


async def test_a_create_that_did_not_land_is_sent_again_after_the_lookup() -> None:
    world = kling_world()
    world.script.on_create("c2", Answer.error(5000, "internal"))  # refused, nothing made
    async with world.client() as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c2")

    assert done.status is TaskStatus.SUCCEED
    assert len(world.tasks) == 1
    assert [b["external_task_id"] for b in world.recorder.bodies()] == ["c2", "c2"]
    assert world.sandbox.state.creates_seen["c2"] == 2


async def test_an_external_id_is_made_up_when_none_is_given() -> None:
    world = kling_world()
    async with world.client() as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"})
    sent = world.recorder.bodies()[0]["external_task_id"]
    assert sent.startswith("kw-")
    assert done.external_id == sent


async def test_an_error_that_created_nothing_is_raised_at_once() -> None:
    world = kling_world()
    world.script.on_create("*", Answer.error(1301, "content risk"))
    async with world.client() as kling:
        with pytest.raises(ContentPolicyError):
            await kling.create_and_wait("text2video", {"prompt": "a fox"})
    assert len(world.requests) == 1


async def test_sends_are_bounded_and_the_last_create_error_is_raised() -> None:
    world = kling_world()
    world.script.on_create("c3", Answer.error(5000, "internal"), times=MAX_CREATE_SENDS)
    async with world.client() as kling:
        with pytest.raises(ServerError) as info:
            await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c3")
    assert info.value.may_exist
    assert len(world.recorder.calls("POST")) == MAX_CREATE_SENDS
    assert not world.tasks


async def test_a_failed_lookup_keeps_the_may_exist_error_with_a_note() -> None:
    world = kling_world()
    world.script.on_create("c4", "timeout")
    world.script.on_read("c4", "timeout", times=None)  # every lookup of it goes unanswered
    async with world.client() as kling:
        with pytest.raises(KlingTimeout) as info:
            await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c4")
    assert info.value.may_exist
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert any("lookup by external id 'c4' failed" in n for n in info.value.__notes__)
    assert len(world.recorder.calls("POST")) == 1


async def test_a_resend_refused_as_a_duplicate_finds_the_task_that_landed_late() -> None:
    world = kling_world()
    late = world.seed(external_id="c5")  # the first send landed, but too late for the first lookup
    world.script.on_create("c5", Answer.error(5000, "internal"))
    # The first lookup (path slot, then query) does not see it yet.
    world.script.on_read("c5", Answer.error(1201, "Task not found"), times=2)
    async with world.client() as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c5")

    assert done.id == late.task_id
    answers = [a.json()["message"] for a in world.recorder.answers if a.status_code == 400]
    assert any("already exists" in m for m in answers)  # the resend, refused by the sandbox
    assert len(world.recorder.calls("POST")) == 2
    assert len(world.tasks) == 1
