"""klingwatch's own KlingClient driven against the sandbox, in-process on a manual clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sandboxkit import ACCESS_KEY, API_KEY, SECRET_KEY, make_config
from starlette.applications import Starlette

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import ConcurrencyLimited, RateLimited, ServerError, TaskNotFound
from klingwatch.kling.models import ApiStandard, TaskStatus
from klingwatch.sandbox import ChaosConfig, create_app

ClientFactory = Callable[..., KlingClient]


@pytest.fixture
def auto_clock() -> ManualClock:
    # Auto-advance: the client's waits move the clock, so the sandbox sees time pass.
    return ManualClock()


@pytest.fixture
async def connect(auto_clock: ManualClock) -> AsyncIterator[ClientFactory]:
    clients: list[KlingClient] = []

    def factory(app: Starlette, *, api_key: bool = True) -> KlingClient:
        creds: dict[str, str] = (
            {"api_key": API_KEY}
            if api_key
            else {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
        )
        client = KlingClient(
            base_url="http://sandbox.test",
            transport=httpx.ASGITransport(app=app),
            clock=auto_clock,
            **creds,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def sandbox_app(clock: ManualClock, **config: Any) -> Starlette:
    return create_app(make_config(**config), clock=clock)


async def test_create_wait_succeed_with_a_key_pair(
    connect: ClientFactory, auto_clock: ManualClock
) -> None:
    app = sandbox_app(auto_clock)
    client = connect(app, api_key=False)
    created = await client.create("text2video", {"prompt": "a fox"}, external_task_id="c-1")
    assert created.status is TaskStatus.SUBMITTED
    done = await client.wait("text2video", created.id)
    assert done.status is TaskStatus.SUCCEED
    assert done.external_id == "c-1"
    assert done.videos[0].url is not None
    assert done.units is not None
    truth = app.state.sandbox.state.find(created.id)
    assert truth is not None
    assert done.updated_at is not None
    assert done.updated_ms == int(truth.finished * 1000)


async def test_new_standard_create_and_wait(
    connect: ClientFactory, auto_clock: ManualClock
) -> None:
    client = connect(sandbox_app(auto_clock))
    created = await client.create(
        "text-to-video/kling-3.0", {"prompt": "waves", "settings": {"duration": 5}}
    )
    done = await client.wait("text-to-video/kling-3.0", created.id)
    assert done.status is TaskStatus.SUCCEED
    assert done.standard is ApiStandard.TASKS


async def test_an_ambiguous_create_is_found_by_its_external_id(
    connect: ClientFactory, auto_clock: ManualClock
) -> None:
    app = sandbox_app(auto_clock, chaos=ChaosConfig(created_then_5000=1.0))
    client = connect(app)
    with pytest.raises(ServerError) as caught:
        await client.create("text2video", {"prompt": "x"}, external_task_id="maybe")
    assert caught.value.may_exist
    found = await client.get_by_external_id("text2video", "maybe")
    assert found.external_id == "maybe"
    assert app.state.sandbox.state.creates_seen["maybe"] == 1


async def test_the_client_sees_1303_and_not_found(
    connect: ClientFactory, auto_clock: ManualClock
) -> None:
    client = connect(sandbox_app(auto_clock, slots={"video": 1}))
    await client.create("text2video", {"prompt": "x"})
    with pytest.raises(ConcurrencyLimited):
        await client.create("text2video", {"prompt": "x"})
    with pytest.raises(TaskNotFound):
        await client.get("text2video", "123456789012345678")


async def test_reading_many_lists_and_pages_agree(
    connect: ClientFactory, auto_clock: ManualClock
) -> None:
    client = connect(sandbox_app(auto_clock, slots={"video": 30}))
    ids = [(await client.create("text2video", {"prompt": f"t{i}"})).id for i in range(25)]
    many = await client.get_many(ids)
    assert set(many) == set(ids)
    active = await client.list_tasks(status=[TaskStatus.SUBMITTED, TaskStatus.PROCESSING])
    assert {t.id for t in active} == set(ids)
    page = await client.list_page("text2video", page=1, size=10)
    assert [t.id for t in page] == ids[::-1][:10]
    auto_clock.advance(3600)
    done = await client.list_tasks(status=[TaskStatus.SUCCEED], limit=7)
    assert len(done) == 25


async def test_ground_truth_agrees_with_what_the_client_saw(
    connect: ClientFactory, auto_clock: ManualClock
) -> None:
    app = sandbox_app(
        auto_clock,
        slots={"video": 40},
        failure_rate=0.3,
        chaos=ChaosConfig(errors={1302: 0.2, 5002: 0.05}),
        seed=3,
    )
    client = connect(app)
    ids = []
    for i in range(20):
        # Chaos refuses some creates before anything is created.
        with contextlib.suppress(ServerError, RateLimited):
            ids.append((await client.create("text2video", {"prompt": f"p{i}"})).id)
    finals = {task_id: await client.wait("text2video", task_id) for task_id in ids}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox.test"
    ) as http:
        truth = {t["task_id"]: t for t in (await http.get("/sandbox/tasks")).json()["tasks"]}
        stats = (await http.get("/sandbox/stats")).json()
    assert set(truth) == set(ids)
    assert {t.status.value for t in finals.values()} == {"succeed", "failed"}
    for task_id, task in finals.items():
        assert task.status.value == truth[task_id]["outcome"]
        assert task.status_msg == truth[task_id]["task_status_msg"]
        assert task.updated_ms == truth[task_id]["finished_at"]
    # Request for request, answer for answer, the two sides count the same.
    seen = client.stats.snapshot()
    assert seen["requests"] == stats["requests"]["total"]
    sent = {
        route: sum(answers.values()) for route, answers in stats["requests"]["by_route"].items()
    }
    assert seen["by_route"] == sent
    assert seen["by_outcome"]["429 1302"] == stats["requests"]["by_code"]["1302"]
