"""KlingClient against the sandbox (the Kling it speaks to): create, get, lists, /tasks, stats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from kling_world import API_KEY, BASE, NEW, answering, kling_world

from klingwatch.kling.client import KlingClient
from klingwatch.kling.envelope import dumps, success
from klingwatch.kling.errors import (
    BadResponse,
    ConfigurationError,
    RequestValidationError,
    TaskNotFound,
)
from klingwatch.kling.models import ApiStandard, TaskStatus
from klingwatch.kling.products import Family, get_product
from klingwatch.sandbox import Answer


def body_of(request: httpx.Request) -> dict[str, object]:
    data = json.loads(request.content)
    assert isinstance(data, dict)
    return data


# -- create ------------------------------------------------------------------------------------
async def test_legacy_create_sends_the_validated_body_with_routing_fields() -> None:
    world = kling_world()
    async with world.client() as kling:
        task = await kling.create(
            "text2video",
            {"prompt": "a fox in snow", "duration": 5, "x_new_field": 1},
            external_task_id="batch-1",
            callback_url="https://me.example/cb",
        )

    (sent,) = world.requests
    assert (sent.method, sent.url.path) == ("POST", "/v1/videos/text2video")
    assert body_of(sent) == {
        "prompt": "a fox in snow",
        "duration": "5",
        "x_new_field": 1,
        "external_task_id": "batch-1",
        "callback_url": "https://me.example/cb",
    }
    assert task.status is TaskStatus.SUBMITTED
    assert task.external_id == "batch-1"
    assert task.id in world.tasks
    assert task.created_at == datetime.fromtimestamp(world.clock.time(), tz=UTC)


async def test_new_standard_create_posts_to_product_and_model_with_options() -> None:
    world = kling_world()
    async with world.client(api_key=True) as kling:
        task = await kling.create(
            NEW, {"prompt": "a fox", "settings": {"duration": 5}}, external_task_id="n-1"
        )

    (sent,) = world.requests
    assert sent.url.path == "/text-to-video/kling-3.0-turbo"
    assert body_of(sent)["options"] == {"external_task_id": "n-1"}
    assert task.standard is ApiStandard.TASKS
    assert (task.status, task.external_id) == (TaskStatus.SUBMITTED, "n-1")


async def test_a_create_answer_without_task_info_keeps_the_external_id_sent() -> None:
    world = kling_world()
    answer = {"task_id": "9", "task_status": "submitted", "created_at": 1, "updated_at": 1}
    world.script.on_create("mine", Answer.raw(200, dumps(success(answer))))
    async with world.client() as kling:
        task = await kling.create("text2video", {"prompt": "p"}, external_task_id="mine")
    assert (task.id, task.external_id) == ("9", "mine")


async def test_an_invalid_request_is_refused_before_anything_is_sent() -> None:
    world = kling_world()
    async with world.client() as kling:
        with pytest.raises(RequestValidationError, match="prompt"):
            await kling.create("text2video", {"duration": "7"})
    assert world.requests == []
    assert not world.sandbox.state.requests


async def test_new_standard_calls_with_a_key_pair_only_are_refused_before_sending() -> None:
    world = kling_world()
    async with world.client() as kling:
        for call in (
            kling.create(NEW, {"prompt": "a fox"}),
            kling.get(NEW, "1"),
            kling.get_by_external_id(NEW, "e"),
            kling.get_many(["1"]),
            kling.get_many_by_external_id(["e"]),
            kling.list_tasks(),
        ):
            with pytest.raises(ConfigurationError, match="KLING_API_KEY"):
                await call
    assert world.requests == []


async def test_an_unknown_product_is_a_clear_configuration_error() -> None:
    async with kling_world().client() as kling:
        with pytest.raises(ConfigurationError, match="text2video"):
            await kling.get("text2vdeo", "1")


# -- single reads ------------------------------------------------------------------------------
async def test_get_reads_a_legacy_task_at_its_path() -> None:
    world = kling_world()
    made = world.seed(external_id="e-1", queue=0, run=0)
    async with world.client() as kling:
        task = await kling.get(get_product("/v1/videos/text2video"), made.task_id)

    assert world.requests[0].url.path == f"/v1/videos/text2video/{made.task_id}"
    assert task.status is TaskStatus.SUCCEED
    assert task.result_urls == [world.video_url(made)]
    assert task.videos[0].duration == 5.1


async def test_get_by_external_id_uses_the_same_path_slot_for_legacy_products() -> None:
    world = kling_world()
    made = world.seed(external_id="batch-9")
    async with world.client() as kling:
        task = await kling.get_by_external_id("text2video", "batch-9")

    assert task.id == made.task_id
    assert [r.url.path for r in world.requests] == ["/v1/videos/text2video/batch-9"]


async def test_an_external_id_only_served_in_the_query_is_still_found() -> None:
    world = kling_world(external_id_lookup="query")
    made = world.seed(external_id="batch-q")
    async with world.client() as kling:
        task = await kling.get_by_external_id("text2video", "batch-q")

    assert task.id == made.task_id
    assert [str(r.url.copy_with(scheme="https", host="k")) for r in world.requests] == [
        "https://k/v1/videos/text2video/batch-q",
        "https://k/v1/videos/text2video?external_task_id=batch-q",
    ]


@pytest.mark.parametrize("lookup", ["path", "query", "both"])
async def test_an_absent_external_id_is_not_found_whatever_the_server_supports(
    lookup: str,
) -> None:
    world = kling_world(external_id_lookup=lookup)
    world.seed(external_id="someone-else")  # what a server ignoring the query lists instead
    async with world.client() as kling:
        with pytest.raises(TaskNotFound):
            await kling.get_by_external_id("text2video", "never-sent")
    assert len(world.requests) == 2


async def test_ids_are_quoted_into_one_path_segment() -> None:
    world = kling_world()
    async with world.client() as kling:
        with pytest.raises(TaskNotFound):
            await kling.get_by_external_id("text2video", "a/b c")
    assert world.requests[0].url.raw_path == b"/v1/videos/text2video/a%2Fb%20c"


@pytest.mark.parametrize(("status", "code"), [(400, 1201), (404, 1203)])
async def test_an_unknown_task_is_task_not_found_whichever_way_kling_says_it(
    status: int, code: int
) -> None:
    world = kling_world(not_found=str(code))
    async with world.client() as kling:
        with pytest.raises(TaskNotFound) as info:
            await kling.get("text2video", "404404")
    assert (info.value.status_code, info.value.code) == (status, code)
    assert len(world.requests) == 1  # not retried


async def test_a_single_get_answered_with_a_list_picks_the_matching_task() -> None:
    world = kling_world()
    a, b = world.seed(external_id="ea"), world.seed(external_id="eb")
    both = Answer.raw(200, dumps(success([world.payload(a), world.payload(b)])))
    world.script.on_read(b.task_id, both)
    world.script.on_read("ea", both)
    world.script.on_read(b.task_id, Answer.raw(200, dumps(success([world.payload(a)]))))
    async with world.client() as kling:
        assert (await kling.get("text2video", b.task_id)).id == b.task_id
        assert (await kling.get_by_external_id("text2video", "ea")).id == a.task_id
        with pytest.raises(TaskNotFound):
            await kling.get("text2video", b.task_id)


async def test_new_standard_get_reads_through_tasks() -> None:
    world = kling_world()
    made = world.seed(NEW, external_id="n-2")
    async with world.client(api_key=True) as kling:
        task = await kling.get(NEW, made.task_id)
        by_ext = await kling.get_by_external_id(NEW, "n-2")
        with pytest.raises(TaskNotFound):
            await kling.get(NEW, "999")

    assert task.id == by_ext.id == made.task_id
    assert task.standard is ApiStandard.TASKS
    queries = [dict(r.url.params) for r in world.requests]
    assert queries == [
        {"task_ids": made.task_id},
        {"external_task_ids": "n-2"},
        {"task_ids": "999"},
    ]


# -- many at once ------------------------------------------------------------------------------
async def test_get_many_asks_twenty_ids_a_call_and_matches_by_id() -> None:
    world = kling_world()
    made = [world.seed() for _ in range(40)]
    ids = [t.task_id for t in made] + [f"missing-{i}" for i in range(5)]
    async with world.client(api_key=True) as kling:
        found = await kling.get_many(ids)

    asked = [r.url.params["task_ids"].split(",") for r in world.requests]
    assert world.requests[0].url.query.startswith(f"task_ids={ids[0]},{ids[1]},".encode())
    assert [len(chunk) for chunk in asked] == [20, 20, 5]
    assert [i for chunk in asked for i in chunk] == ids
    assert set(found) == {t.task_id for t in made}
    assert all(task.id == key for key, task in found.items())


async def test_get_many_by_external_id_is_keyed_by_external_id() -> None:
    world = kling_world()
    world.seed(external_id="x-1")
    world.seed(external_id="x-2")
    async with world.client(api_key=True) as kling:
        found = await kling.get_many_by_external_id(["x-2", "x-1", "x-3", "x-1"])
        assert await kling.get_many([]) == {}

    assert {k: t.external_id for k, t in found.items()} == {"x-1": "x-1", "x-2": "x-2"}
    assert len(world.requests) == 1
    assert world.requests[0].url.params["external_task_ids"] == "x-2,x-1,x-3"


async def test_list_page_and_iter_tasks_walk_legacy_pages() -> None:
    world = kling_world()
    made = [world.seed() for _ in range(5)]
    world.seed("image-generation")
    async with world.client() as kling:
        page = await kling.list_page("text2video", page=1, size=2)
        every = [t.id async for t in kling.iter_tasks("text2video", size=2)]
        with pytest.raises(ConfigurationError):
            await kling.list_page("text2video", page=0)
        with pytest.raises(ConfigurationError, match="list_tasks"):
            await kling.list_page(NEW)

    assert world.requests[0].url.params == httpx.QueryParams({"pageNum": "1", "pageSize": "2"})
    assert [t.id for t in page] == [made[4].task_id, made[3].task_id]
    assert sorted(every) == sorted(t.task_id for t in made)
    assert len(world.requests) == 1 + 3  # pages of 2, 2, 1


async def test_list_tasks_follows_the_cursor_with_filters() -> None:
    world = kling_world()
    done = world.seed(queue=0, run=0)
    for _ in range(5):
        world.seed()
    async with world.client(api_key=True) as kling:
        active = await kling.list_tasks(
            status=[TaskStatus.SUBMITTED, "processing"],
            product_type=[Family.VIDEO],
            since=datetime(2025, 12, 1, tzinfo=UTC),
            until=1_767_225_600.0 + 60,
            limit=2,
        )

    assert len(active) == 5
    assert done.task_id not in {t.id for t in active}
    bodies = [body_of(r) for r in world.recorder.calls("POST", "/tasks")]
    assert len(bodies) == 3  # pages of 2, 2, 1
    assert bodies[0] == {
        "limit": 2,
        "start_time": 1_764_547_200_000,
        "end_time": 1_767_225_660_000,
        "filters": [
            {"key": "status", "values": ["submitted", "processing"]},
            {"key": "product_type", "values": ["video"]},
        ],
    }
    cursors = [a.json()["data"]["next_cursor"] for a in world.recorder.answers]
    assert [b.get("cursor") for b in bodies] == [None, *cursors[:2]]
    assert cursors[0] != cursors[1]
    assert cursors[2] is None


async def test_succeed_is_sent_in_the_new_spelling() -> None:
    world = kling_world()
    world.seed(queue=0, run=0)
    async with world.client(api_key=True) as kling:
        done = await kling.list_tasks(status=[TaskStatus.SUCCEED])
    assert body_of(world.requests[0])["filters"] == [{"key": "status", "values": ["succeeded"]}]
    assert [t.status for t in done] == [TaskStatus.SUCCEED]


async def test_a_cursor_loop_is_a_bad_response_not_an_endless_loop() -> None:
    # No sane server does this: a tiny handler plays one that sends the same cursor forever.
    sent: list[httpx.Request] = []

    def looping(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        page = {"result": [], "count": 0, "next_cursor": "same", "has_more": True}
        return httpx.Response(200, content=dumps(success(page)))

    async with answering(looping, api_key=True) as kling:
        with pytest.raises(BadResponse, match="cursor"):
            await kling.list_tasks()
    assert len(sent) == 2


# -- construction and stats --------------------------------------------------------------------
def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="KLING_API_BASE"):
        KlingClient(api_key=API_KEY, base_url="api.klingai.com")


def test_a_transport_and_an_http_client_together_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        KlingClient(
            api_key=API_KEY,
            base_url=BASE,
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
            http_client=httpx.AsyncClient(),
        )


async def test_a_given_http_client_is_used_left_open_and_shared_without_mixing_stats() -> None:
    world = kling_world()
    made = world.seed()
    async with httpx.AsyncClient(transport=world.recorder) as http:
        async with (
            KlingClient(api_key=API_KEY, base_url=BASE, http_client=http) as one,
            KlingClient(api_key=API_KEY, base_url=BASE, http_client=http) as two,
        ):
            await one.get("text2video", made.task_id)
            await two.get("text2video", made.task_id)
            await two.get("text2video", made.task_id)
            await http.get(f"{BASE}/somewhere/else")  # e.g. a download on the same client
        assert not http.is_closed
    assert (one.stats.requests, two.stats.requests) == (1, 2)
    assert len(world.requests) == 4


async def test_stats_count_requests_by_route_and_outcome() -> None:
    world = kling_world()
    made = world.seed()
    async with world.client(api_key=True) as kling:
        await kling.get("text2video", made.task_id)
        await kling.get("text2video", made.task_id)
        await kling.create("text2video", {"prompt": "p"})
        with pytest.raises(TaskNotFound):
            await kling.get("text2video", "nope")
        await kling.get_many([made.task_id])

    assert kling.stats.requests == 5
    assert kling.stats.by_route == {
        ("GET", "/v1/videos/text2video/{id}"): 3,
        ("POST", "/v1/videos/text2video"): 1,
        ("GET", "/tasks"): 1,
    }
    assert kling.stats.by_outcome == {("200", "0"): 4, ("400", "1201"): 1}
    snap = kling.stats.snapshot()
    assert snap["requests"] == 5
    assert snap["by_outcome"] == {"200 0": 4, "400 1201": 1}
    assert "requests=5" in repr(kling)
