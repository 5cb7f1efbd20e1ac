"""Result files: real MP4 and PNG bytes, Range requests, the 30-day expiry."""

from __future__ import annotations

import struct
import zlib

import httpx
import pytest
from sandboxkit import SandboxFactory, client_for

from klingwatch.clock import ManualClock
from klingwatch.sandbox.media import png, sample_mp4


def boxes(data: bytes) -> list[str]:
    """Top-level MP4 box types."""
    out, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        out.append(kind.decode())
        if size < 8:
            break
        at += size
    return out


def test_the_sample_video_is_a_small_faststart_mp4() -> None:
    data = sample_mp4()
    assert len(data) < 50_000
    kinds = boxes(data)
    assert kinds[0] == "ftyp"
    assert kinds.index("moov") < kinds.index("mdat")  # playable while downloading
    assert b"vp09" in data  # VP9: open-source Chromium decodes it


def test_png_is_valid() -> None:
    data = png(4, 3, (10, 200, 30))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    at, chunks = 8, {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        at += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    assert (width, height) == (4, 3)
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + 3 * width)


async def finished_video(api: httpx.AsyncClient, clock: ManualClock) -> str:
    task_id = (await api.post("/v1/videos/text2video", json={"prompt": "x"})).json()["data"][
        "task_id"
    ]
    clock.advance(100)
    data = (await api.get(f"/v1/videos/text2video/{task_id}")).json()["data"]
    url: str = data["task_result"]["videos"][0]["url"]
    return url.removeprefix("http://sandbox.test")


async def test_a_video_url_serves_the_mp4(api: httpx.AsyncClient, clock: ManualClock) -> None:
    path = await finished_video(api, clock)
    r = await api.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.content == sample_mp4()


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-10", None, None)],
)
async def test_range_requests_answer_206(
    api: httpx.AsyncClient, clock: ManualClock, header: str, start: int | None, end: int | None
) -> None:
    path = await finished_video(api, clock)
    size = len(sample_mp4())
    r = await api.get(path, headers={"Range": header})
    assert r.status_code == 206
    first = start if start is not None else size - 10
    last = end if end is not None else size - 1
    assert r.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert r.content == sample_mp4()[first : last + 1]


async def test_the_truth_counts_result_bodies_served_per_task(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    path = await finished_video(api, clock)
    task_id = path.split("/")[3]
    assert (await api.get(path)).status_code == 200
    assert (await api.get(path, headers={"Range": "bytes=10-"})).status_code == 206
    assert (await api.get(path, headers={"Range": "bytes=999999-"})).status_code == 416
    assert (await api.head(path)).status_code == 200
    truth = (await api.get(f"/sandbox/tasks/{task_id}")).json()
    assert truth["media_gets"] == 2  # the whole file and a resumed part; no 416, no HEAD


async def test_an_unsatisfiable_range_answers_416(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    path = await finished_video(api, clock)
    r = await api.get(path, headers={"Range": "bytes=999999-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(sample_mp4())}"


async def test_images_are_pngs(api: httpx.AsyncClient, clock: ManualClock) -> None:
    r = await api.post("/v1/images/generations", json={"prompt": "x", "n": 2})
    task_id = r.json()["data"]["task_id"]
    clock.advance(100)
    data = (await api.get(f"/v1/images/generations/{task_id}")).json()["data"]
    urls = [i["url"].removeprefix("http://sandbox.test") for i in data["task_result"]["images"]]
    got = [await api.get(u) for u in urls]
    assert all(g.headers["content-type"] == "image/png" for g in got)
    assert all(g.content.startswith(b"\x89PNG") for g in got)
    assert got[0].content != got[1].content


async def test_unfinished_or_unknown_results_are_404(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/videos/text2video", json={"prompt": "x"})
    task_id = r.json()["data"]["task_id"]
    assert (await api.get(f"/sandbox/media/{task_id}/0.png")).status_code == 404
    assert (await api.get("/sandbox/media/123/0.png")).status_code == 404


@pytest.mark.parametrize("status", [404, 403])
async def test_results_expire_30_days_after_the_task_ended(
    make_app: SandboxFactory, clock: ManualClock, status: int
) -> None:
    async with client_for(make_app(expired_media_status=status)) as api:
        path = await finished_video(api, clock)
        clock.advance(29 * 86_400)
        assert (await api.get(path)).status_code == 200
        clock.advance(2 * 86_400)
        assert (await api.get(path)).status_code == status
