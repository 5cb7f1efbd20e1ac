"""The sandbox on a real uvicorn socket, checked field by field against KLING_PROTOCOL.md."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandboxkit import API_KEY, FAST, jwt_for, make_config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from klingwatch.clock import RealClock
from klingwatch.kling.webhooks import verify_signature
from klingwatch.sandbox import ChaosConfig, create_app, serve_in_thread

pytestmark = pytest.mark.slow

T2V = "/v1/videos/text2video"
#: A 70 s nominal lifecycle takes 70 ms of real time.
SCALE = 0.001


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_in_thread(make_config(time_scale=SCALE)) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ) as client:
        yield client


def wait_status(http: httpx.Client, path: str, status: str) -> dict[str, Any]:
    for _ in range(2000):
        data: dict[str, Any] = http.get(path).json()["data"]
        if data["task_status"] == status:
            return data
    raise AssertionError(f"{path} never reached {status}")


def is_ms(value: Any) -> bool:
    return isinstance(value, int) and 1_600_000_000_000 < value < 4_000_000_000_000


def check_envelope(r: httpx.Response) -> Any:
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["code", "message", "request_id", "data"]
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    uuid.UUID(body["request_id"])
    return body["data"]


def test_serve_in_thread_yields_a_loopback_url(base_url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)


def test_legacy_create_and_query_match_the_protocol_field_by_field(http: httpx.Client) -> None:
    data = check_envelope(http.post(T2V, json={"prompt": "x", "external_task_id": "f-1"}))
    assert set(data) == {"task_id", "task_status", "task_info", "created_at", "updated_at"}
    assert re.fullmatch(r"\d{18}", data["task_id"])
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "f-1"}
    assert is_ms(data["created_at"])
    assert is_ms(data["updated_at"])

    done = wait_status(http, f"{T2V}/{data['task_id']}", "succeed")
    assert set(done) == {
        "task_id",
        "task_status",
        "task_status_msg",
        "task_info",
        "task_result",
        "final_unit_deduction",
        "created_at",
        "updated_at",
    }
    assert done["task_status_msg"] == ""
    assert isinstance(done["final_unit_deduction"], str)
    (video,) = done["task_result"]["videos"]
    assert set(video) == {"id", "url", "duration"}
    assert isinstance(video["duration"], str)
    assert float(video["duration"]) > 0
    assert done["updated_at"] > done["created_at"]
    media = httpx.get(video["url"], headers={"Range": "bytes=0-7"})
    assert media.status_code == 206
    assert media.content[4:8] == b"ftyp"

    page = check_envelope(http.get(T2V, params={"pageNum": 1, "pageSize": 30}))
    assert isinstance(page, list)
    assert page[0]["task_id"] == data["task_id"]


def test_error_bodies_have_no_data_and_the_documented_status(http: httpx.Client) -> None:
    cases = [
        (http.get(f"{T2V}/000000000000000000"), 400, 1201),
        (http.get(T2V, params={"pageSize": 501}), 400, 1201),
        (http.post(T2V, json={"prompt": ""}), 400, 1201),
        (httpx.get(f"{http.base_url}{T2V}"), 401, 1001),
        (http.get(T2V, headers={"Authorization": "Bearer wrong"}), 401, 1002),
        (http.get("/v2/nothing"), 404, 1202),
    ]
    for r, status, code in cases:
        assert r.status_code == status, r.text
        body = r.json()
        assert list(body) == ["code", "message", "request_id"]
        assert body["code"] == code
        assert body["message"]


def test_new_standard_objects_match_the_protocol(http: httpx.Client) -> None:
    body = {"prompt": "x", "settings": {"duration": 5}, "options": {"external_task_id": "n-9"}}
    created = check_envelope(http.post("/text-to-video/kling-3.0", json=body))
    assert set(created) == {"id", "status", "create_time", "update_time", "external_id"}
    for _ in range(2000):
        (task,) = check_envelope(http.get("/tasks", params={"external_task_ids": "n-9"}))
        if task["status"] == "succeeded":
            break
    assert set(task) == {
        "id",
        "status",
        "message",
        "create_time",
        "update_time",
        "external_id",
        "outputs",
        "billing",
    }
    assert task["outputs"][0]["type"] == "video"
    assert task["billing"][0]["charge_type"] == "unit"
    listed = check_envelope(http.post("/tasks", json={"limit": 500}))
    assert set(listed) == {"result", "count", "next_cursor", "has_more"}
    assert task["id"] in {t["id"] for t in listed["result"]}


def test_jwt_auth_over_the_socket(base_url: str) -> None:
    token = jwt_for(RealClock().time())
    r = httpx.get(f"{base_url}{T2V}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    expired = jwt_for(RealClock().time() - 4000)
    r = httpx.get(f"{base_url}{T2V}", headers={"Authorization": f"Bearer {expired}"})
    assert (r.status_code, r.json()["code"]) == (401, 1004)


def test_a_dropped_connection_is_a_transport_error() -> None:
    config = make_config(chaos=ChaosConfig(drop=1.0))
    with (
        serve_in_thread(config, log_level="critical") as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as http,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(T2V, json={"prompt": "x", "external_task_id": "dropped"})
        # The create went through before the line dropped; the truth shows it.
        truth = http.get("/sandbox/external/dropped").json()
    assert truth["creates_seen"] == 1
    assert truth["task_id"] is not None


def test_signed_callbacks_arrive_over_real_sockets() -> None:
    secret = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        got.append((dict(request.headers), await request.body()))
        return Response(b"ok")

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    config = make_config(
        time_scale=SCALE, webhook_secret=secret, durations={"video": FAST}, callbacks="terminal"
    )
    with (
        serve_in_thread(app=receiver) as hook_url,
        serve_in_thread(app=create_app(config)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as http,
    ):
        r = http.post(T2V, json={"prompt": "x", "callback_url": f"{hook_url}/hook"})
        task_id = r.json()["data"]["task_id"]
        wait_status(http, f"{T2V}/{task_id}", "succeed")
        for _ in range(2000):
            if got:
                break
            http.get("/sandbox/callbacks")  # a real round trip between looks
    assert len(got) == 1
    headers, body = got[0]
    verify_signature(secret, headers, body)
    assert task_id.encode() in body


def test_a_busy_port_is_one_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(RuntimeError, match=f"did not start on 127.0.0.1:{port}"),
            serve_in_thread(make_config(), port=port, log_level="critical"),
        ):
            pass
