"""The new-standard API: POST /{product}/{model}, GET /tasks, POST /tasks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandboxkit import SandboxFactory, client_for, jwt_for
from starlette.applications import Starlette

from klingwatch.clock import ManualClock

T2V = "/text-to-video/kling-3.0-turbo"


async def create(api: httpx.AsyncClient, ext: str | None = None, **body: Any) -> dict[str, Any]:
    body.setdefault("prompt", "a paper boat on a river")
    body.setdefault("settings", {"duration": 5})
    if ext is not None:
        body["options"] = {"external_task_id": ext}
    r = await api.post(T2V, json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_create_answers_id_status_times_and_external_id(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    data = await create(api, ext="n-1")
    assert set(data) == {"id", "status", "create_time", "update_time", "external_id"}
    assert data["status"] == "submitted"
    assert data["external_id"] == "n-1"
    assert data["create_time"] == round(clock.time() * 1000)


_FRAME = {"type": "first_frame", "url": "https://example.com/a.png"}
_MOTION = [
    {"type": "image", "url": "https://example.com/a.png"},
    {"type": "video", "url": "https://example.com/a.mp4"},
]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/text-to-video/kling-2.6", {"prompt": "x", "settings": {"duration": 5}}),
        ("/image-to-video/kling-3.0", {"prompt": "x", "contents": [_FRAME]}),
        ("/omni-video/kling-o1", {"prompt": "x", "contents": [_FRAME]}),
        (
            "/motion-control/kling-3.0",
            {"contents": _MOTION, "settings": {"character_orientation": "video"}},
        ),
    ],
)
async def test_every_new_standard_product_creates(
    api: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    r = await api.post(path, json=body)
    assert r.status_code == 200, r.text


async def test_an_invalid_duration_answers_1201_naming_the_field(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/text-to-video/kling-2.6", json={"prompt": "x", "settings": {"duration": 7}}
    )
    assert (r.status_code, r.json()["code"]) == (400, 1201)
    assert "duration" in r.json()["message"]


async def test_an_unknown_product_answers_404_1202(api: httpx.AsyncClient) -> None:
    r = await api.post("/text-to-audio/kling-3.0", json={"prompt": "x"})
    assert (r.status_code, r.json()["code"]) == (404, 1202)


async def test_a_jwt_is_refused_with_1002(app: Starlette) -> None:
    token = jwt_for(app.state.sandbox.clock.time())
    async with client_for(app, token) as jwt_api:
        r = await jwt_api.post(T2V, json={"prompt": "x"})
        listed = await jwt_api.post("/tasks", json={})
        legacy = await jwt_api.post("/v1/videos/text2video", json={"prompt": "x"})
    assert (r.status_code, r.json()["code"]) == (401, 1002)
    assert "does not support AK/SK" in r.json()["message"]
    assert listed.json()["code"] == 1002
    assert legacy.status_code == 200  # the same JWT is fine on /v1


async def test_get_many_by_id_skips_unknown_ids(api: httpx.AsyncClient, clock: ManualClock) -> None:
    a = (await create(api))["id"]
    b = (await create(api))["id"]
    clock.advance(100)
    r = await api.get("/tasks", params={"task_ids": f"{a},999999999999999999,{b}"})
    data = r.json()["data"]
    assert sorted(t["id"] for t in data) == sorted([a, b])
    task = data[0]
    assert task["status"] == "succeeded"
    assert task["outputs"][0]["type"] == "video"
    assert task["billing"] == [{"charge_type": "unit", "amount": "1.5", "package_type": "video"}]


async def test_get_many_order_is_not_the_asked_order_unless_configured(
    make_app: SandboxFactory,
) -> None:
    orders = {}
    for order in ("shuffled", "asked"):
        async with client_for(make_app(many_order=order, slots={"video": 20})) as api:
            ids = [(await create(api))["id"] for _ in range(12)]
            data = (await api.get("/tasks", params={"task_ids": ",".join(ids)})).json()["data"]
        assert sorted(t["id"] for t in data) == sorted(ids)
        orders[order] = [t["id"] for t in data] == ids
    assert orders == {"shuffled": False, "asked": True}


async def test_get_many_by_external_id(api: httpx.AsyncClient) -> None:
    created = await create(api, ext="e-a")
    data = (await api.get("/tasks", params={"external_task_ids": "e-a,e-missing"})).json()["data"]
    assert [(t["id"], t["external_id"]) for t in data] == [(created["id"], "e-a")]


@pytest.mark.parametrize(
    "params",
    [
        {"task_ids": ",".join(str(i) for i in range(21))},
        {"task_ids": "1", "external_task_ids": "2"},
        {},
    ],
)
async def test_get_many_refuses_21_ids_both_kinds_or_none(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    r = await api.get("/tasks", params=params)
    assert (r.status_code, r.json()["code"]) == (400, 1201)


async def test_get_many_takes_20_ids(api: httpx.AsyncClient) -> None:
    r = await api.get("/tasks", params={"task_ids": ",".join(str(i) for i in range(20))})
    assert (r.status_code, r.json()["data"]) == (200, [])


async def test_list_includes_legacy_tasks_and_follows_the_cursor(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    async with client_for(make_app(slots={"video": 50})) as api:
        ids = []
        for i in range(7):
            ids.append((await create(api, ext=f"l{i}"))["id"])
            clock.advance(1)
        legacy = await api.post("/v1/videos/text2video", json={"prompt": "old style"})
        ids.append(legacy.json()["data"]["task_id"])
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            body: dict[str, Any] = {"limit": 3}
            if cursor:
                body["cursor"] = cursor
            data = (await api.post("/tasks", json=body)).json()["data"]
            pages += 1
            assert data["count"] == len(data["result"])
            seen += [t["id"] for t in data["result"]]
            if not data["has_more"]:
                assert data["next_cursor"] is None
                break
            cursor = data["next_cursor"]
    assert pages == 3
    assert seen == ids[::-1]


async def test_list_filters_by_status_and_product_type(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    done = (await create(api))["id"]
    clock.advance(100)
    running = (await create(api))["id"]
    clock.advance(20)
    image = await api.post("/v1/images/generations", json={"prompt": "a cup"})
    image_id = image.json()["data"]["task_id"]

    async def ids(filters: list[dict[str, Any]]) -> list[str]:
        data = (await api.post("/tasks", json={"filters": filters})).json()["data"]
        return [t["id"] for t in data["result"]]

    assert await ids([{"key": "status", "values": ["succeeded"]}]) == [done]
    assert await ids([{"key": "status", "values": ["processing"]}]) == [running]
    assert await ids([{"key": "status", "values": ["submitted", "processing"]}]) == [
        image_id,
        running,
    ]
    assert await ids([{"key": "product_type", "values": ["image"]}]) == [image_id]


async def test_list_time_range_is_creation_ms(api: httpx.AsyncClient, clock: ManualClock) -> None:
    first = (await create(api))["create_time"]
    clock.advance(10)
    second = await create(api)
    data = (await api.post("/tasks", json={"start_time": first + 1})).json()["data"]
    assert [t["id"] for t in data["result"]] == [second["id"]]


async def test_list_times_may_be_strings_of_digits(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    # kling-omni-3.0-ovg.md sends "start_time": "1781193600000"; kling-3.0-turbo-t2v.md an int.
    first = (await create(api))["create_time"]
    clock.advance(10)
    second = await create(api)
    for start in (str(first + 1), first + 1):
        body = {"start_time": start, "end_time": str(second["create_time"]), "cursor": ""}
        r = await api.post("/tasks", json=body)
        assert r.status_code == 200, r.text
        assert [t["id"] for t in r.json()["data"]["result"]] == [second["id"]]


async def test_an_empty_external_task_id_in_options_is_no_id(api: httpx.AsyncClient) -> None:
    one = await create(api, ext="")
    two = await create(api, ext="")

    assert one["external_id"] is None
    assert two["external_id"] is None
    assert one["id"] != two["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"start_time": "yesterday"},
        {"limit": 501},
        {"limit": 0},
        {"cursor": "garbage!"},
        {"filters": [{"key": "status", "values": ["succeed"]}]},
        {"filters": [{"key": "colour", "values": ["red"]}]},
        {"start_time": 2, "end_time": 1},
    ],
)
async def test_list_refuses_bad_bodies_with_1201(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    r = await api.post("/tasks", json=body)
    assert (r.status_code, r.json()["code"]) == (400, 1201)
