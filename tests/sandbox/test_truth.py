"""Ground truth on /sandbox/...: it agrees with what a client saw."""

from __future__ import annotations

import json

import httpx
from sandboxkit import SandboxFactory, client_for

from klingwatch.clock import ManualClock

T2V = "/v1/videos/text2video"


async def test_stats_count_requests_by_route_and_answer(api: httpx.AsyncClient) -> None:
    await api.post(T2V, json={"prompt": "x", "external_task_id": "s1"})
    await api.get(f"{T2V}/s1")
    await api.get(f"{T2V}/unknown")
    await api.get(T2V)
    stats = (await api.get("/sandbox/stats")).json()
    assert stats["requests"]["by_route"] == {
        f"POST {T2V}": {"200 0": 1},
        f"GET {T2V}/{{id}}": {"200 0": 1, "400 1201": 1},
        f"GET {T2V}": {"200 0": 1},
    }
    assert stats["requests"]["total"] == 4
    assert stats["requests"]["by_code"] == {"0": 3, "1201": 1}
    assert stats["creates"]["created"] == 1


async def test_a_task_timeline_matches_what_the_client_saw(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    created = (await api.post(T2V, json={"prompt": "x", "external_task_id": "t1"})).json()["data"]
    clock.advance(30)
    mid = (await api.get(f"{T2V}/{created['task_id']}")).json()["data"]
    truth = (await api.get("/sandbox/tasks/t1")).json()
    assert truth["status"] == mid["task_status"] == "processing"
    assert truth["started_at"] == mid["updated_at"]
    assert truth["finished_at"] is None
    clock.advance(60)
    end = (await api.get(T2V)).json()["data"][0]
    truth = (await api.get(f"/sandbox/tasks/{created['task_id']}")).json()
    assert truth["created_at"] == created["created_at"] == end["created_at"]
    assert truth["finished_at"] == end["updated_at"]
    assert truth["status"] == truth["outcome"] == end["task_status"] == "succeed"
    assert (truth["reads"], truth["single_reads"], truth["creates_seen"]) == (2, 1, 1)


async def test_tasks_can_be_filtered(api: httpx.AsyncClient, clock: ManualClock) -> None:
    await api.post(T2V, json={"prompt": "x"})
    clock.advance(100)
    await api.post("/v1/images/generations", json={"prompt": "x"})
    done = (await api.get("/sandbox/tasks", params={"status": "succeed"})).json()
    images = (await api.get("/sandbox/tasks", params={"product": "image-generation"})).json()
    assert done["count"] == 1
    assert done["tasks"][0]["product"] == "text2video"
    assert images["tasks"][0]["slot_cost"] == 1


async def test_slots_show_usage_over_time(make_app: SandboxFactory, clock: ManualClock) -> None:
    async with client_for(make_app(slots={"video": 3})) as api:
        start = round(clock.time() * 1000)
        for _ in range(3):
            await api.post(T2V, json={"prompt": "x"})
        await api.post(T2V, json={"prompt": "x"})  # 1303
        clock.advance(100)
        slots = (await api.get("/sandbox/slots")).json()
    assert slots["limits"]["video"] == 3
    assert slots["in_use"] == {"video": 0, "image": 0, "try_on": 0}
    assert slots["peak"]["video"] == 3
    assert slots["timeline"]["video"] == [
        [start, 1],
        [start, 2],
        [start, 3],
        [start + 70_000, 2],
        [start + 70_000, 1],
        [start + 70_000, 0],
    ]


async def test_unknown_truth_ids_are_404(api: httpx.AsyncClient) -> None:
    r = await api.get("/sandbox/tasks/none")
    assert r.status_code == 404
    never = (await api.get("/sandbox/external/never")).json()
    assert never == {
        "external_task_id": "never",
        "creates_seen": 0,
        "lookups_seen": 0,
        "task_id": None,
    }


async def test_reset_forgets_everything(api: httpx.AsyncClient) -> None:
    first = (await api.post(T2V, json={"prompt": "x", "external_task_id": "r"})).json()["data"]
    assert (await api.post("/sandbox/reset")).json() == {"reset": True}
    stats = (await api.get("/sandbox/stats")).json()
    assert stats["tasks"]["total"] == 0
    assert stats["requests"]["total"] == 0
    again = (await api.post(T2V, json={"prompt": "x", "external_task_id": "r"})).json()["data"]
    # The seed starts over: the same run gets the same ids.
    assert again["task_id"] == first["task_id"]


async def test_tasks_page_with_offset_and_limit(api: httpx.AsyncClient) -> None:
    for _ in range(5):
        await api.post(T2V, json={"prompt": "x"})
    every = (await api.get("/sandbox/tasks")).json()
    page = (await api.get("/sandbox/tasks", params={"offset": 3, "limit": 10})).json()
    assert (page["count"], page["offset"]) == (5, 3)
    assert page["tasks"] == every["tasks"][3:]


async def test_config_is_shown_without_secrets(api: httpx.AsyncClient) -> None:
    shown = (await api.get("/sandbox/config")).json()
    assert shown["access_keys"] == ["ak-test"]
    assert shown["api_keys"] == 1
    assert shown["slots"] == {"video": 5, "image": 10, "try_on": 2}
    assert "sk-test" not in json.dumps(shown)


async def test_one_tasks_truth_shows_the_request_it_was_made_from(api: httpx.AsyncClient) -> None:
    body = {"prompt": "a fox", "duration": 5, "callback_url": "https://me.example/cb"}
    await api.post(T2V, json={**body, "external_task_id": "q1"})
    one = (await api.get("/sandbox/tasks/q1")).json()
    listed = (await api.get("/sandbox/tasks")).json()["tasks"]

    # Validated as the client would (duration a string); the routing fields stand apart.
    assert one["request"] == {"prompt": "a fox", "duration": "5"}
    assert (one["external_task_id"], one["callback_url"]) == ("q1", "https://me.example/cb")
    assert "request" not in listed[0]  # the list stays small whatever the requests hold
