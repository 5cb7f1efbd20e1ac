"""create_and_wait: one call, one task, even when the create's answer is lost."""

from __future__ import annotations

import json

import httpx
import pytest
from fakekling import FakeKling, error, make_client

from klingwatch.kling.client import MAX_CREATE_SENDS
from klingwatch.kling.errors import ContentPolicyError, KlingTimeout, ServerError
from klingwatch.kling.models import TaskStatus


async def test_a_lost_answer_is_recovered_by_external_id_without_a_resend() -> None:
    fake = FakeKling(lose_answers=1)
    async with make_client(fake) as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c1")

    assert done.status is TaskStatus.SUCCEED
    assert done.external_id == "c1"
    assert len(fake.tasks) == 1
    assert len(fake.calls("POST")) == 1


async def test_a_create_that_did_not_land_is_sent_again_after_the_lookup() -> None:
    fake = FakeKling()
    fake.create_script.append(error(500, 5000, "internal"))  # refused before creating anything
    async with make_client(fake) as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c2")

    assert done.status is TaskStatus.SUCCEED
    assert len(fake.tasks) == 1
    posts = fake.calls("POST")
    assert len(posts) == 2
    assert [json.loads(p.content)["external_task_id"] for p in posts] == ["c2", "c2"]


async def test_an_external_id_is_made_up_when_none_is_given() -> None:
    fake = FakeKling()
    async with make_client(fake) as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"})
    sent = json.loads(fake.calls("POST")[0].content)["external_task_id"]
    assert sent.startswith("kw-")
    assert done.external_id == sent


async def test_an_error_that_created_nothing_is_raised_at_once() -> None:
    fake = FakeKling()
    fake.script.append(error(400, 1301, "content risk"))
    async with make_client(fake) as kling:
        with pytest.raises(ContentPolicyError):
            await kling.create_and_wait("text2video", {"prompt": "a fox"})
    assert len(fake.requests) == 1


async def test_sends_are_bounded_and_the_last_create_error_is_raised() -> None:
    fake = FakeKling()
    fake.create_script += [error(500, 5000, "internal")] * MAX_CREATE_SENDS
    async with make_client(fake) as kling:
        with pytest.raises(ServerError) as info:
            await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c3")
    assert info.value.may_exist
    assert len(fake.calls("POST")) == MAX_CREATE_SENDS


async def test_a_failed_lookup_keeps_the_may_exist_error_with_a_note() -> None:
    fake = FakeKling()
    fake.script.append(httpx.ReadTimeout("timed out"))
    fake.script += [httpx.ConnectError("refused")] * 20
    async with make_client(fake) as kling:
        with pytest.raises(KlingTimeout) as info:
            await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c4")
    assert info.value.may_exist
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert any("lookup by external id 'c4' failed" in n for n in info.value.__notes__)
    assert len(fake.calls("POST")) == 1


async def test_a_resend_refused_as_a_duplicate_finds_the_task_that_landed_late() -> None:
    fake = FakeKling()
    late = fake.add(external_id="c5")  # the first send landed, but too late for the first lookup
    fake.create_script += [
        error(500, 5000, "internal"),
        error(400, 1201, "external_task_id already exists"),
    ]
    fake.script += [error(400, 1201, "Task not found")] * 2  # the first lookup (path, query)
    async with make_client(fake) as kling:
        done = await kling.create_and_wait("text2video", {"prompt": "a fox"}, external_task_id="c5")

    assert done.id == late.id
    assert len(fake.calls("POST")) == 2
    assert len(fake.tasks) == 1
