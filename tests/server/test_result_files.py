"""server/media.py: a downloaded copy is what the API hands out to play, and only recorded files are
ever served."""

from __future__ import annotations

from pathlib import Path

import httpx
from serverkit import add_task, end_task

from klingwatch.clock import ManualClock
from klingwatch.store import Ledger, LocalStatus

MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4
KLING_URL = "https://cdn.kling.example/expired/v.mp4"


def succeeded_with_file(ledger: Ledger, clock: ManualClock, path: Path, *, state: str) -> int:
    local = add_task(ledger, 1)
    end_task(
        ledger,
        local,
        LocalStatus.SUCCEED,
        result={"videos": [{"id": "v", "url": KLING_URL, "duration": "5.1"}]},
    )
    ledger.record_download(
        local,
        0,
        url=KLING_URL,
        path=str(path),
        size=len(MP4),
        sha256=None,
        state=state,
        error=None if state == "complete" else "HTTP 403",
        at=clock.time(),
    )
    return local


async def test_a_downloaded_video_plays_from_the_local_copy(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    video = tmp_path / "downloads" / "b1-1_0.mp4"
    video.parent.mkdir()
    video.write_bytes(MP4)
    local = succeeded_with_file(ledger, clock, video, state="complete")

    task = (await http.get(f"/api/tasks/{local}")).json()
    assert task["media"] == [
        {
            "kind": "video",
            "index": 0,
            "url": f"/api/tasks/{local}/files/0",
            "kling_url": KLING_URL,
            "local": True,
            "duration": 5.1,
        }
    ]
    assert task["downloads"][0]["file_url"] == f"/api/tasks/{local}/files/0"
    listed = (await http.get("/api/tasks")).json()["items"][0]
    assert listed["media"][0]["url"] == f"/api/tasks/{local}/files/0"

    served = await http.get(task["media"][0]["url"])
    assert served.status_code == 200
    assert served.content == MP4
    assert served.headers["content-type"] == "video/mp4"
    # A browser seeking in the video asks for a range.
    part = await http.get(task["media"][0]["url"], headers={"Range": "bytes=4-11"})
    assert part.status_code == 206
    assert part.content == b"ftypmp42"


async def test_a_missing_copy_falls_back_to_klings_url(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    gone = tmp_path / "moved-away.mp4"
    local = succeeded_with_file(ledger, clock, gone, state="complete")
    task = (await http.get(f"/api/tasks/{local}")).json()
    assert (task["media"][0]["url"], task["media"][0]["local"]) == (KLING_URL, False)
    answer = await http.get(f"/api/tasks/{local}/files/0")
    assert answer.status_code == 404
    assert answer.json()["detail"] == (
        f"file 0 of task '{local}' is no longer at {gone} (`klingwatch download` fetches it again)"
    )


async def test_only_complete_recorded_files_are_served(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    partial = tmp_path / "half.mp4"
    partial.write_bytes(MP4[:10])
    local = succeeded_with_file(ledger, clock, partial, state="failed")
    assert (await http.get(f"/api/tasks/{local}")).json()["media"][0]["local"] is False
    failed = await http.get(f"/api/tasks/{local}/files/0")
    assert failed.status_code == 404
    assert failed.json()["detail"] == f"file 0 of task '{local}' is not downloaded"
    assert (await http.get(f"/api/tasks/{local}/files/1")).status_code == 404
    # The route takes an index, never a path: nothing else on disk can be named.
    for sneaky in ("..%2F..%2Fetc%2Fpasswd", "-1", "0.5", str(2**40)):
        answer = await http.get(f"/api/tasks/{local}/files/{sneaky}")
        assert answer.status_code in (404, 422), sneaky
        assert answer.headers["content-type"] == "application/json"
    assert (await http.get(f"/api/tasks/{local}/files/../../../etc/passwd")).status_code == 404
