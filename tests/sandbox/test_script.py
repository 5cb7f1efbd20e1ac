"""Scripted answers: per external id, per read, per route; in config, in Python, over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sandboxkit import SandboxFactory, client_for
from starlette.applications import Starlette

from klingwatch.clock import ManualClock
from klingwatch.sandbox import Answer, SandboxConfig, ScriptConfig
from klingwatch.sandbox.runtime import Sandbox

T2V = "/v1/videos/text2video"
NEW = "/text-to-video/kling-3.0-turbo"


async def create(api: httpx.AsyncClient, ext: str | None = None, **body: Any) -> httpx.Response:
    body.setdefault("prompt", "a fox")
    if ext is not None:
        body["external_task_id"] = ext
    return await api.post(T2V, json=body)


async def stats(api: httpx.AsyncClient) -> Any:
    return (await api.get("/sandbox/stats")).json()


async def test_the_next_create_of_an_external_id_gets_the_scripted_error_then_the_usual(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.script.on_create("x", Answer.error(1302, headers={"Retry-After": "90"}))

    refused = await create(api, "x")
    created = await create(api, "x")
    other = await create(api, "y")

    assert (refused.status_code, refused.json()["code"]) == (429, 1302)
    assert refused.headers["retry-after"] == "90"
    assert "data" not in refused.json()
    assert created.json()["data"]["task_info"] == {"external_task_id": "x"}
    assert other.status_code == 200
    truth = await stats(api)
    # Counted like any other create: seen twice, refused once, made once.
    assert (await api.get("/sandbox/external/x")).json()["creates_seen"] == 2
    assert truth["creates"]["refused"] == {"1302": 1}
    assert truth["requests"]["by_route"][f"POST {T2V}"] == {"429 1302": 1, "200 0": 2}
    assert truth["script"] == {"create error 429/1302": 1}


async def test_created_then_500_makes_the_task_and_answers_5000(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.script.on_create("ghost", "created-then-500")

    r = await create(api, "ghost")
    found = await api.get(f"{T2V}/ghost")

    assert (r.status_code, r.json()["code"]) == (500, 5000)
    assert found.json()["data"]["task_info"]["external_task_id"] == "ghost"
    assert (await stats(api))["creates"] == {
        "created": 1,
        "refused": {},
        "external_ids_seen": 1,
        "external_ids_sent_more_than_once": 0,
    }


async def test_a_scripted_create_may_fix_the_tasks_life(
    api: httpx.AsyncClient, sandbox: Sandbox, clock: ManualClock
) -> None:
    sandbox.script.on_create("f", Answer.served(queue=1, run=2, fail="Image pixel is invalid"))
    task_id = (await create(api, "f")).json()["data"]["task_id"]

    seen = []
    for step in (0, 1.5, 2):
        clock.advance(step)
        seen.append((await api.get(f"{T2V}/{task_id}")).json()["data"])

    assert [t["task_status"] for t in seen] == ["submitted", "processing", "failed"]
    assert seen[-1]["task_status_msg"] == "Image pixel is invalid"


async def test_rules_are_used_in_order_and_times_none_holds_until_cleared(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.script.on_create("*", Answer.error(5001), times=2)  # any create
    sandbox.script.on_create("*", Answer.error(1303))

    codes = [(await create(api)).json()["code"] for _ in range(4)]
    sandbox.script.on_read("*", Answer.error(5000), times=None)
    reads = [(await api.get(T2V)).json()["code"] for _ in range(3)]
    sandbox.script.clear()

    assert codes == [5001, 5001, 1303, 0]
    assert reads == [5000, 5000, 5000]
    assert (await api.get(T2V)).json()["code"] == 0


async def test_reads_of_a_task_are_scripted_by_either_of_its_ids_and_counted_as_lookups(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    task_id = (await create(api, "r")).json()["data"]["task_id"]
    sandbox.script.on_read("r", Answer.error(5000), times=3)

    by_task_id = await api.get(f"{T2V}/{task_id}")
    by_path = await api.get(f"{T2V}/r")
    by_query = await api.get(T2V, params={"external_task_id": "r"})
    served = await api.get(f"{T2V}/r")
    many = await api.get("/tasks", params={"external_task_ids": "r,never"})

    assert [x.json()["code"] for x in (by_task_id, by_path, by_query)] == [5000] * 3
    assert served.json()["data"]["task_id"] == task_id
    assert [t["id"] for t in many.json()["data"]] == [task_id]
    external = (await api.get("/sandbox/external/r")).json()
    assert external["lookups_seen"] == 4  # path, query, path, /tasks: not the read by task id
    assert (await api.get("/sandbox/external/never")).json()["lookups_seen"] == 1


async def test_a_route_can_be_scripted_whatever_it_names(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.script.on_route("POST /tasks", Answer.error(1202, "no such route"), times=None)

    listed = await api.post("/tasks", json={})
    by_id = await api.get("/tasks", params={"task_ids": "1"})

    assert (listed.status_code, listed.json()["code"]) == (404, 1202)
    assert by_id.status_code == 200


async def test_a_raw_answer_goes_out_exactly_as_written(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    page = b"<html><body>502 Bad Gateway</body></html>"
    sandbox.script.on_create("p", Answer.raw(502, page, content_type="text/html"))

    r = await create(api, "p")

    assert (r.status_code, r.content) == (502, page)
    assert r.headers["content-type"] == "text/html"
    assert "date" not in r.headers  # nothing added, not even the sandbox's Date
    assert (await stats(api))["requests"]["by_route"][f"POST {T2V}"] == {"502 raw": 1}
    assert not sandbox.state.tasks


async def test_no_answer_in_process_is_a_timeout_or_a_dropped_connection(
    app: Starlette, sandbox: Sandbox
) -> None:
    sandbox.script.on_create("t", "timeout")
    sandbox.script.on_create("d", "created-then-drop")
    async with client_for(app) as api:  # through the sandbox's own in-process transport
        with pytest.raises(httpx.ReadTimeout):
            await create(api, "t")
        with pytest.raises(httpx.RemoteProtocolError):
            await create(api, "d")
        truth = await stats(api)
    assert truth["requests"]["by_route"][f"POST {T2V}"] == {"- timeout": 1, "200 dropped": 1}
    assert [t.external_id for t in sandbox.state.order] == ["d"]  # the drop came after creating


def test_a_config_script_is_read_from_short_forms_and_json() -> None:
    config = SandboxConfig.model_validate(
        {
            "script": {
                "creates": {
                    "a": ["timeout", "created-then-500", 1302, {"reply": "raw", "status": 502}],
                },
                "routes": {"GET /tasks": [{"reply": "error", "code": 1202, "times": None}]},
            }
        }
    )
    answers = config.script.creates["a"]

    assert [a.describe() for a in answers] == [
        "timeout",
        "created-then-error 500/5000",
        "error 429/1302",
        "raw 502 (0 bytes application/json)",
    ]
    assert config.script.routes["GET /tasks"][0].times is None


@pytest.mark.parametrize(
    ("answer", "says"),
    [("sometimes", "unknown answer"), ({"reply": "error"}, "needs a Kling code"), (True, "word")],
)
def test_a_bad_scripted_answer_says_what_is_wrong(answer: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ScriptConfig.model_validate({"creates": {"a": [answer]}})


async def test_the_script_is_driven_over_http_and_reset_brings_the_configured_one_back(
    make_app: SandboxFactory,
) -> None:
    configured = ScriptConfig(creates={"c": [Answer.error(1303)]})
    async with client_for(make_app(script=configured)) as api:
        added = await api.post("/sandbox/script", content=json.dumps({"reads": {"*": ["timeout"]}}))
        refused = await create(api, "c")
        shown = (await api.get("/sandbox/script")).json()
        cleared = (await api.delete("/sandbox/script")).json()
        bad = await api.post("/sandbox/script", json={"creates": {"c": ["maybe"]}})
        await api.post("/sandbox/reset")
        again = (await api.get("/sandbox/script")).json()

    assert added.status_code == 200
    assert added.json()["creates"] == {"c": [{"answer": "error 429/1303", "left": 1}]}
    assert refused.json()["code"] == 1303
    assert shown["creates"] == {}
    assert shown["reads"] == {"*": [{"answer": "timeout", "left": 1}]}
    assert shown["given"] == {"create error 429/1303": 1}
    assert (cleared["creates"], cleared["reads"]) == ({}, {})
    assert bad.status_code == 400
    assert "unknown answer" in bad.json()["error"]
    assert again["creates"] == {"c": [{"answer": "error 429/1303", "left": 1}]}
    assert again["given"] == {}
