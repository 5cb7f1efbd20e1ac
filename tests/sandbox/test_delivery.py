"""How answers leave the sandbox: its clock's Date, and answers withheld on purpose."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
from sandboxkit import API_KEY, SandboxFactory, client_for, jwt_for, make_config

from klingwatch.clock import ManualClock
from klingwatch.sandbox import Answer, ChaosConfig, ScriptConfig, serve_in_thread

T2V = "/v1/videos/text2video"


def date_of(response: httpx.Response) -> float:
    return email.utils.parsedate_to_datetime(response.headers["date"]).timestamp()


async def test_every_answer_carries_the_sandbox_clocks_date(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    clock.advance(3600.4)
    ok = await api.post(T2V, json={"prompt": "a fox"})
    refused = await api.get(f"{T2V}/nope")

    assert date_of(ok) == date_of(refused) == int(clock.time())
    assert len(ok.headers.get_list("date")) == 1


async def test_an_offset_clock_checks_tokens_and_stamps_dates_by_its_own_time(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    # Kling's clock 30 minutes ahead of ours: a token we just signed has expired there.
    app = make_app(clock_offset=1800)
    async with client_for(app, jwt_for(clock.time())) as api:
        r = await api.get(f"{T2V}/1")

    assert (r.status_code, r.json()["code"]) == (401, 1004)
    assert date_of(r) == int(clock.time() + 1800)


async def test_chaos_drops_in_process_as_a_dropped_connection(make_app: SandboxFactory) -> None:
    async with client_for(make_app(chaos=ChaosConfig(drop=1.0))) as api:
        with pytest.raises(httpx.RemoteProtocolError):
            await api.post(T2V, json={"prompt": "a fox", "external_task_id": "d"})
        truth = (await api.get("/sandbox/external/d")).json()
    assert truth["creates_seen"] == 1  # it landed: only a lookup may tell


@pytest.mark.slow
def test_on_a_socket_no_answer_leaves_the_client_waiting_and_the_server_serving() -> None:
    script = ScriptConfig(creates={"t": ["timeout"], "d": [Answer.dropped()]})
    started = time.monotonic()
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with (
        serve_in_thread(make_config(script=script)) as url,
        httpx.Client(base_url=url, headers=auth) as http,
    ):
        with pytest.raises(httpx.ReadTimeout):
            http.post(T2V, json={"prompt": "x", "external_task_id": "t"}, timeout=0.3)
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(T2V, json={"prompt": "x", "external_task_id": "d"})
        after = http.post(T2V, json={"prompt": "x", "external_task_id": "t"})
        stats = http.get("/sandbox/stats").json()
    assert after.status_code == 200  # the rule was used up: served as usual
    assert len(after.headers.get_list("date")) == 1  # the sandbox's, not uvicorn's as well
    assert abs(date_of(after) - time.time()) < 5
    assert stats["requests"]["by_route"][f"POST {T2V}"] == {
        "- timeout": 1,
        "500 dropped": 1,
        "200 0": 1,
    }
    assert time.monotonic() - started < 10  # a request left waiting does not hold up the stop
