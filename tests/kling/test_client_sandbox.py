"""KlingClient end to end against klingwatch.sandbox (in process, on one manual clock)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import (
    ConcurrencyLimited,
    KlingConnectionError,
    KlingError,
    ServerError,
    TaskNotFound,
)
from klingwatch.kling.models import ApiStandard, TaskStatus
from klingwatch.kling.products import Family
from klingwatch.sandbox import (
    ChaosConfig,
    SandboxConfig,
    SandboxTransport,
    create_app,
    serve_in_thread,
)

AK, SK = "sandbox-ak", "sandbox-sk-0123456789abcdef0123456789"
API_KEY = "sandbox-api-key"
NEW = "text-to-video/kling-3.0-turbo"

ClientFactory = Callable[..., KlingClient]


@pytest.fixture
async def sandbox_client() -> AsyncIterator[ClientFactory]:
    made: list[KlingClient] = []

    def factory(*, api_key: bool = False, **config: Any) -> KlingClient:
        clock = ManualClock()
        settings = SandboxConfig(
            access_keys={AK: SK}, api_keys=(API_KEY,), failure_rate=0, straggler_rate=0, **config
        )
        app = create_app(settings, clock=clock)
        client = KlingClient(
            access_key=AK,
            secret_key=SK,
            api_key=API_KEY if api_key else None,
            base_url="http://sandbox.test",
            transport=SandboxTransport(app),
            clock=clock,
        )
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


async def test_legacy_lifecycle_with_a_key_pair(sandbox_client: ClientFactory) -> None:
    kling = sandbox_client()
    created = await kling.create("text2video", {"prompt": "a fox in snow"}, external_task_id="s-1")
    seen: list[TaskStatus] = []
    done = await kling.wait(
        "text2video",
        created.id,
        deadline=timedelta(hours=2),
        on_update=lambda t: seen.append(t.status),
    )
    again = await kling.get_by_external_id("text2video", "s-1")
    page = await kling.list_page("text2video")

    assert done.status is TaskStatus.SUCCEED
    assert done.result_urls
    assert done.units is not None
    assert seen[0] is TaskStatus.SUBMITTED
    assert seen[-1] is TaskStatus.SUCCEED
    assert again.id == created.id
    assert again.external_id == "s-1"
    assert [t.id for t in page] == [created.id]
    assert kling.stats.requests < 20


@pytest.mark.parametrize("spelling", ["1201", "1203"])
async def test_unknown_ids_are_task_not_found_in_both_spellings(
    sandbox_client: ClientFactory, spelling: str
) -> None:
    kling = sandbox_client(not_found=spelling)
    with pytest.raises(TaskNotFound):
        await kling.get("text2video", "000000000000000000")
    with pytest.raises(TaskNotFound):
        await kling.get_by_external_id("text2video", "never-sent")


async def test_external_ids_found_when_the_server_takes_them_in_the_path_only(
    sandbox_client: ClientFactory,
) -> None:
    kling = sandbox_client(external_id_lookup="path")
    created = await kling.create(
        "image-generation", {"prompt": "a cat", "n": 2}, external_task_id="i-1"
    )
    assert (await kling.get_by_external_id("image-generation", "i-1")).id == created.id


async def test_new_standard_lifecycle_and_batched_reads(sandbox_client: ClientFactory) -> None:
    kling = sandbox_client(api_key=True)
    made = [
        await kling.create(
            NEW, {"prompt": f"shot {i}", "settings": {"duration": 5}}, external_task_id=f"n-{i}"
        )
        for i in range(3)
    ]
    active = await kling.list_tasks(
        status=[TaskStatus.SUBMITTED, TaskStatus.PROCESSING], product_type=[Family.VIDEO]
    )
    by_id = await kling.get_many([t.id for t in made] + ["404"])
    by_ext = await kling.get_many_by_external_id(["n-0", "n-2"])
    done = await kling.wait(NEW, made[0].id, deadline=timedelta(hours=2))

    assert {t.id for t in active} == {t.id for t in made}
    assert set(by_id) == {t.id for t in made}
    assert all(t.standard is ApiStandard.TASKS for t in by_id.values())
    assert set(by_ext) == {"n-0", "n-2"}
    assert done.status is TaskStatus.SUCCEED
    assert done.videos


async def test_a_full_pack_answers_concurrency_limited(sandbox_client: ClientFactory) -> None:
    kling = sandbox_client(slots={Family.VIDEO: 1})
    await kling.create("text2video", {"prompt": "one"})
    with pytest.raises(ConcurrencyLimited) as info:
        await kling.create("text2video", {"prompt": "two"})
    assert not info.value.may_exist


async def test_tokens_keep_working_across_hours(sandbox_client: ClientFactory) -> None:
    kling = sandbox_client()
    created = await kling.create("text2video", {"prompt": "a long day"})
    clock = kling.clock
    assert isinstance(clock, ManualClock)
    for _ in range(4):
        clock.advance(3600)
        await kling.get("text2video", created.id)
    assert set(kling.stats.by_outcome) == {("200", "0")}


async def _truth(app: Any, path: str) -> Any:
    async with httpx.AsyncClient(
        transport=SandboxTransport(app), base_url="http://sandbox.test"
    ) as http:
        return (await http.get(path)).json()


def _world(**config: Any) -> tuple[KlingClient, Any]:
    clock = ManualClock()
    app = create_app(
        SandboxConfig(access_keys={AK: SK}, failure_rate=0, straggler_rate=0, **config),
        clock=clock,
    )
    kling = KlingClient(
        access_key=AK,
        secret_key=SK,
        base_url="http://sandbox.test",
        transport=SandboxTransport(app),
        clock=clock,
    )
    return kling, app


async def test_a_create_answered_5000_after_landing_is_recovered_not_resent() -> None:
    kling, app = _world(chaos=ChaosConfig(created_then_5000=1.0))
    async with kling:
        with pytest.raises(ServerError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="amb-1")
        assert info.value.may_exist
        found = await kling.get_by_external_id("text2video", "amb-1")

    truth = await _truth(app, "/sandbox/external/amb-1")
    assert truth == {
        "external_task_id": "amb-1",
        "creates_seen": 1,
        "lookups_seen": 1,
        "task_id": found.id,
    }


async def test_a_hostile_server_still_yields_one_task_and_its_result() -> None:
    # In process, SandboxTransport turns a dropped answer into the error a socket would give.
    chaos = ChaosConfig(errors={1302: 0.1, 5000: 0.1, 5002: 0.05}, truncate=0.1, drop=0.05)
    kling, app = _world(chaos=chaos, seed=7)
    async with kling:
        task = None
        for _ in range(20):  # the caller's side of an ambiguous create: look up, then resend
            try:
                task = await kling.create("text2video", {"prompt": "a fox"}, external_task_id="h")
                break
            except KlingError as exc:
                if exc.may_exist:
                    with contextlib.suppress(TaskNotFound):
                        task = await kling.get_by_external_id("text2video", "h")
                        break
                elif not exc.retryable:
                    raise
        assert task is not None
        done = await kling.wait("text2video", task.id, deadline=timedelta(hours=2))

    assert done.status is TaskStatus.SUCCEED
    truth = await _truth(app, "/sandbox/external/h")
    assert truth["creates_seen"] == 1
    assert truth["task_id"] == task.id


async def test_a_connection_dropped_mid_answer_on_a_real_socket_may_exist() -> None:
    # The real httpx transport against uvicorn: the sandbox sends headers, then hangs up.
    config = SandboxConfig(access_keys={AK: SK}, failure_rate=0, chaos=ChaosConfig(drop=1.0))
    with serve_in_thread(config) as url:
        async with KlingClient(access_key=AK, secret_key=SK, base_url=url) as kling:
            with pytest.raises(KlingConnectionError) as info:
                await kling.create("text2video", {"prompt": "a fox"}, external_task_id="d-1")
        async with httpx.AsyncClient(base_url=url) as http:
            truth = (await http.get("/sandbox/external/d-1")).json()

    assert info.value.may_exist
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError | httpx.ReadError)
    assert truth["creates_seen"] == 1  # it did land: only a lookup may tell
    assert kling.stats.by_outcome == {("connection", ""): 1}
