"""A client written the way KLING_PROTOCOL.md's readers write them, run against the sandbox.

Synchronous ``requests``, PyJWT, a new token for every call, polling with ``time.sleep``; nothing
from klingwatch. Only the base URL differs from what it would use against Kling.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from sandboxkit import ACCESS_KEY, SECRET_KEY, make_config

from klingwatch.sandbox import serve_in_thread

pytestmark = pytest.mark.slow


class ReaderClient:
    """What a developer writes after reading the protocol page once."""

    def __init__(self, base: str, ak: str, sk: str) -> None:
        self.base, self.ak, self.sk = base, ak, sk

    def _headers(self) -> dict[str, str]:
        now = int(time.time())
        token = jwt.encode(
            {"iss": self.ak, "exp": now + 1800, "nbf": now - 5},
            self.sk,
            algorithm="HS256",
            headers={"alg": "HS256", "typ": "JWT"},
        )
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = requests.request(method, self.base + path, headers=self._headers(), timeout=30, **kw)
        body = r.json()
        if body["code"] != 0:
            raise RuntimeError(f"Kling error {body['code']}: {body['message']}")
        return body["data"]

    def text2video(self, prompt: str, external_task_id: str) -> str:
        data = self._call(
            "POST",
            "/v1/videos/text2video",
            json={
                "model_name": "kling-v2-6",
                "prompt": prompt,
                "mode": "std",
                "duration": "5",
                "aspect_ratio": "16:9",
                "external_task_id": external_task_id,
            },
        )
        return str(data["task_id"])

    def query(self, task_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", f"/v1/videos/text2video/{task_id}")
        return data

    def wait(self, task_id: str, poll: float = 0.02, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            task = self.query(task_id)
            if task["task_status"] in ("succeed", "failed"):
                return task
            time.sleep(poll)
        raise TimeoutError(task_id)

    def page(self, num: int = 1, size: int = 30) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call(
            "GET", "/v1/videos/text2video", params={"pageNum": num, "pageSize": size}
        )
        return data


@pytest.fixture(scope="module")
def reader() -> Iterator[ReaderClient]:
    config = make_config(time_scale=0.001, failure_rate=0.0)
    with serve_in_thread(config) as url:
        yield ReaderClient(url, ACCESS_KEY, SECRET_KEY)


def test_the_reader_creates_waits_and_downloads(reader: ReaderClient) -> None:
    task_id = reader.text2video("a red kite over the sea", "reader-1")
    task = reader.wait(task_id)
    assert task["task_status"] == "succeed"
    url = task["task_result"]["videos"][0]["url"]
    video = requests.get(url, timeout=30)
    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"


def test_the_reader_finds_its_task_by_external_id_and_in_the_list(reader: ReaderClient) -> None:
    task_id = reader.text2video("a slow zoom", "reader-2")
    assert reader.query("reader-2")["task_id"] == task_id
    assert task_id in [t["task_id"] for t in reader.page()]


def test_the_reader_sees_errors_in_the_envelope(reader: ReaderClient) -> None:
    with pytest.raises(RuntimeError, match="1201"):
        reader.query("123456789012345678")
    bad = ReaderClient(reader.base, ACCESS_KEY, "not-the-secret-not-the-secret-not-the")
    with pytest.raises(RuntimeError, match="1002"):
        bad.page()
