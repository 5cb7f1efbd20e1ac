"""Collecting a batch's results: real bytes from a real loopback server, a real SQLite ledger."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from asyncio.subprocess import PIPE
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from media_server import MediaServer, mp4_bytes, png_bytes, read_only_dir, serve, small_disk

from klingwatch.clock import ManualClock
from klingwatch.monitor.downloads import Downloader, Summary
from klingwatch.monitor.fetch import StorageError, part_path
from klingwatch.monitor.layout import TemplateError
from klingwatch.monitor.locks import lock_path
from klingwatch.monitor.sidecar import read_sidecar
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.errors import UnknownTask

DAY = 86_400.0
VIDEOS = {f"v{i}.mp4": mp4_bytes(300_000 + i * 1000, seed=i) for i in range(4)}
IMAGES = {f"i{i}.png": png_bytes(40 + i, 30, seed=10 + i) for i in range(2)}


@pytest.fixture(scope="module")
def running() -> Iterator[MediaServer]:
    with serve(MediaServer()) as app:
        yield app


@pytest.fixture
def server(running: MediaServer) -> MediaServer:
    return running.reset(VIDEOS | IMAGES)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(tmp_path: Path, clock: ManualClock) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock) as opened:
        yield opened


def succeeded(
    ledger: Ledger,
    clock: ManualClock,
    external_id: str,
    result: dict[str, Any],
    *,
    batch: str = "spring",
    age: float = 3600.0,
) -> TaskRecord:
    """A task that went queued -> submitted -> succeed, finished ``age`` seconds ago."""
    product = "text2video" if result.get("videos") else "image_generation"
    added = ledger.add_tasks(
        batch,
        [
            NewTask(
                product=product,
                request={"prompt": f"prompt of {external_id}"},
                external_task_id=external_id,
            )
        ],
    )
    local_id = added.added[0]
    ledger.apply(
        Observation(
            status=LocalStatus.SUBMITTED,
            source=Source.CREATE,
            at=clock.time() - age - 100,
            local_id=local_id,
            task_id=f"k-{external_id}",
        )
    )
    ledger.apply(
        Observation(
            status=LocalStatus.SUCCEED,
            source=Source.GET,
            at=clock.time() - age,
            local_id=local_id,
            kling_updated_ms=round((clock.time() - age) * 1000),
            result=result,
        )
    )
    task = ledger.task(local_id)
    assert task is not None
    return task


def video_result(server: MediaServer, *names: str) -> dict[str, Any]:
    return {"videos": [{"id": n, "url": server.url(n), "duration": "5.1"} for n in names]}


def image_result(server: MediaServer, *names: str) -> dict[str, Any]:
    return {"images": [{"index": i, "url": server.url(n)} for i, n in enumerate(names)]}


def downloader(ledger: Ledger, clock: ManualClock, **kw: Any) -> Downloader:
    return Downloader(AsyncLedger(ledger), clock=clock, **kw)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def outcomes(summary: Summary) -> list[tuple[str, str]]:
    return sorted((f.path.name, f.outcome) for f in summary.files)


async def test_a_batch_is_collected_with_a_sidecar_and_a_ledger_record_per_file(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    a = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4"))
    b = succeeded(ledger, clock, "spring-2", image_result(server, "i0.png", "i1.png"))
    root = tmp_path / "out"
    async with downloader(ledger, clock) as dl:
        summary = await dl.download([a, b], root)
    assert summary.ok
    assert outcomes(summary) == [
        ("spring-1_0.mp4", "downloaded"),
        ("spring-2_0.png", "downloaded"),
        ("spring-2_1.png", "downloaded"),
    ]
    on_disk = files_under(root)
    assert on_disk["spring/spring-1_0.mp4"] == VIDEOS["v0.mp4"]
    assert on_disk["spring/spring-2_1.png"] == IMAGES["i1.png"]
    # Nothing but the files and their sidecars: no .part, no .lock left behind.
    assert sorted(on_disk) == [
        "spring/spring-1_0.mp4",
        "spring/spring-1_0.mp4.json",
        "spring/spring-2_0.png",
        "spring/spring-2_0.png.json",
        "spring/spring-2_1.png",
        "spring/spring-2_1.png.json",
    ]
    records = {(r.local_id, r.index): r for r in ledger.downloads()}
    video = root / "spring" / "spring-1_0.mp4"
    rec = records[(a.local_id, 0)]
    assert (rec.state, rec.path, rec.size) == ("complete", str(video), len(VIDEOS["v0.mp4"]))
    assert rec.sha256 == hashlib.sha256(VIDEOS["v0.mp4"]).hexdigest()
    assert records[(b.local_id, 1)].sha256 == hashlib.sha256(IMAGES["i1.png"]).hexdigest()


async def test_the_sidecar_describes_the_file_request_result_and_timeline(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v1.mp4"))
    async with downloader(ledger, clock) as dl:
        await dl.download([task], tmp_path)
    video = tmp_path / "spring" / "spring-1_0.mp4"
    side = read_sidecar(video)
    data = video.read_bytes()
    assert side["file"]["size"] == len(data)
    assert side["file"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert side["file"]["url"] == server.url("v1.mp4")
    assert side["request"] == {"prompt": "prompt of spring-1"}
    assert side["result"] == video_result(server, "v1.mp4")
    assert side["task"]["task_id"] == "k-spring-1"
    assert [(e["from"], e["to"]) for e in side["timeline"]] == [
        (None, "queued"),
        ("queued", "submitted"),
        ("submitted", "succeed"),
    ]


async def test_a_cut_connection_is_completed_by_the_rerun_and_matches_its_sidecar(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    tasks = [
        succeeded(ledger, clock, f"spring-{i}", video_result(server, f"v{i}.mp4")) for i in range(3)
    ]
    # v1 is cut after 120 kB, then the connection keeps dying until this run gives up.
    server.cut_after["v1.mp4"] = [120_000, 0, 0, 0, 0, 0]
    async with downloader(ledger, clock) as dl:
        first = await dl.download(tasks, tmp_path)
    assert outcomes(first) == [
        ("spring-0_0.mp4", "downloaded"),
        ("spring-1_0.mp4", "failed"),
        ("spring-2_0.mp4", "downloaded"),
    ]
    assert not first.ok
    cut = tmp_path / "spring" / "spring-1_0.mp4"
    assert not cut.exists()  # nothing with the final name until it is whole
    kept = part_path(cut).stat().st_size
    assert 0 < kept <= 120_000
    assert [r.state for r in ledger.downloads(tasks[1].local_id)] == ["failed"]

    before = len(server.seen)
    async with downloader(ledger, clock) as dl:
        second = await dl.download(tasks, tmp_path)
    assert second.ok
    assert outcomes(second) == [
        ("spring-0_0.mp4", "skipped"),
        ("spring-1_0.mp4", "downloaded"),
        ("spring-2_0.mp4", "skipped"),
    ]
    # The rerun asked only for the missing bytes of the cut file, and nothing else.
    assert [(s.path, s.range) for s in server.seen[before:]] == [
        ("/media/v1.mp4", f"bytes={kept}-")
    ]
    assert [f.resumed for f in second.files if f.outcome == "downloaded"] == [True]
    for i in range(3):
        path = tmp_path / "spring" / f"spring-{i}_0.mp4"
        assert path.read_bytes() == VIDEOS[f"v{i}.mp4"]
        side = read_sidecar(path)["file"]
        assert side["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert side["size"] == path.stat().st_size
    assert not part_path(cut).exists()


async def test_a_rerun_skips_complete_files_without_a_single_request(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    tasks = [
        succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4", "v1.mp4")),
        succeeded(ledger, clock, "spring-2", image_result(server, "i0.png")),
    ]
    async with downloader(ledger, clock) as dl:
        await dl.download(tasks, tmp_path)
        requests = len(server.seen)
        again = await dl.download(tasks, tmp_path)
    assert len(server.seen) == requests
    assert {f.outcome for f in again.files} == {"skipped"}
    assert len(again.files) == 3


async def test_a_file_that_no_longer_matches_its_record_is_fetched_again(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4"))
    async with downloader(ledger, clock) as dl:
        await dl.download([task], tmp_path)
        video = tmp_path / "spring" / "spring-1_0.mp4"
        damaged = bytearray(video.read_bytes())
        damaged[-1] ^= 0xFF
        video.write_bytes(bytes(damaged))
        again = await dl.download([task], tmp_path)
    assert outcomes(again) == [("spring-1_0.mp4", "downloaded")]
    assert video.read_bytes() == VIDEOS["v0.mp4"]


async def test_a_complete_file_the_ledger_does_not_know_is_verified_and_recorded(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v2.mp4"))
    video = tmp_path / "spring" / "spring-1_0.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(VIDEOS["v2.mp4"])
    async with downloader(ledger, clock) as dl:
        summary = await dl.download([task], tmp_path)
    assert outcomes(summary) == [("spring-1_0.mp4", "skipped")]
    assert server.seen == []
    [rec] = ledger.downloads(task.local_id)
    assert (rec.state, rec.sha256) == ("complete", hashlib.sha256(VIDEOS["v2.mp4"]).hexdigest())
    assert read_sidecar(video)["file"]["sha256"] == rec.sha256


async def test_an_expired_url_is_marked_expired_and_not_asked_again(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    server.status["v3.mp4"] = 403
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v3.mp4"))
    async with downloader(ledger, clock) as dl:
        first = await dl.download([task], tmp_path)
        second = await dl.download([task], tmp_path)
    assert [f.outcome for f in first.files] == ["expired"]
    assert "HTTP 403" in (first.files[0].message or "")
    assert first.ok  # an expired file is reported, not a failure of the run
    assert [f.outcome for f in second.files] == ["expired"]
    assert len(server.requests_for("v3.mp4")) == 1
    [rec] = ledger.downloads(task.local_id)
    assert rec.state == "expired"
    assert "30 days" in (rec.error or "")
    assert not (tmp_path / "spring" / "spring-1_0.mp4").exists()


async def test_a_result_past_30_days_is_expired_without_a_request(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = succeeded(ledger, clock, "old-1", video_result(server, "v0.mp4"), age=31 * DAY)
    async with downloader(ledger, clock) as dl:
        summary = await dl.download([task], tmp_path)
    assert [f.outcome for f in summary.files] == ["expired"]
    assert "expired on 2025-12-31 00:00 UTC" in (summary.files[0].message or "")
    assert server.seen == []


async def test_html_instead_of_media_is_refused_and_recorded_as_failed(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    server.html.add("v0.mp4")
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4"))
    async with downloader(ledger, clock) as dl:
        summary = await dl.download([task], tmp_path)
    assert not summary.ok
    assert "web page" in (summary.files[0].message or "")
    assert [r.state for r in ledger.downloads(task.local_id)] == ["failed"]
    assert files_under(tmp_path / "spring") == {}


async def test_a_full_disk_stops_every_download_and_leaves_nothing_that_looks_complete(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    tasks = [
        succeeded(ledger, clock, f"spring-{i}", video_result(server, f"v{i}.mp4")) for i in range(4)
    ]
    with small_disk(tmp_path, 512 * 1024) as (folder, opener):
        async with downloader(ledger, clock, concurrency=1, opener=opener) as dl:
            summary = await dl.download(tasks, folder)
        assert isinstance(summary.stopped, StorageError)
        assert "disk full" in str(summary.stopped)
        assert [f.outcome for f in summary.files] == ["downloaded"]
        # What is on the disk is whole (with its sidecar); no .part of the file that did not fit.
        on_disk = files_under(folder)
        assert on_disk == {
            "spring/spring-0_0.mp4": VIDEOS["v0.mp4"],
            "spring/spring-0_0.mp4.json": on_disk["spring/spring-0_0.mp4.json"],
        }
    # One file filled the disk; the two after it were never asked for.
    assert len(server.seen) == 2
    states = {r.local_id: r.state for r in ledger.downloads()}
    assert states == {tasks[0].local_id: "complete", tasks[1].local_id: "failed"}


async def test_an_unwritable_folder_stops_downloads_before_any_request(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    tasks = [
        succeeded(ledger, clock, f"spring-{i}", video_result(server, f"v{i}.mp4")) for i in range(2)
    ]
    with read_only_dir(tmp_path) as folder:
        async with downloader(ledger, clock) as dl:
            summary = await dl.download(tasks, folder)
        assert isinstance(summary.stopped, StorageError)
        assert "cannot write" in str(summary.stopped)
        assert files_under(folder) == {}
    assert server.seen == []


async def test_two_downloaders_on_the_same_task_make_one_transfer_and_both_see_the_file(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4", "v1.mp4"))
    async with downloader(ledger, clock) as one, downloader(ledger, clock) as two:
        first, second = await asyncio.gather(
            one.download([task], tmp_path), two.download([task], tmp_path)
        )
    assert len(server.requests_for("v0.mp4")) == 1
    assert len(server.requests_for("v1.mp4")) == 1
    both = sorted(f.outcome for f in first.files + second.files)
    assert both == ["downloaded", "downloaded", "skipped", "skipped"]
    for name in ("v0.mp4", "v1.mp4"):
        index = 0 if name == "v0.mp4" else 1
        path = tmp_path / "spring" / f"spring-1_{index}.mp4"
        assert path.read_bytes() == VIDEOS[name]


async def _held_elsewhere(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> tuple[TaskRecord, Path, asyncio.subprocess.Process]:
    """A task with one video, and a second process holding that file's download lock (taken
    with the library, not with our code)."""
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4"))
    dest = tmp_path / "spring" / "spring-1_0.mp4"
    dest.parent.mkdir(parents=True)
    script = (
        "import sys\n"
        "from filelock import FileLock\n"
        f"lock = FileLock({str(lock_path(dest))!r})\n"
        "lock.acquire()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdin=PIPE, stdout=PIPE
    )
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"locked\n"
    return task, dest, holder


async def test_a_file_another_process_is_downloading_is_left_to_it(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task, video, holder = await _held_elsewhere(server, ledger, clock, tmp_path)
    try:
        async with downloader(ledger, clock) as dl:
            summary = await dl.download([task], tmp_path)
    finally:
        await holder.communicate(b"")
    assert [f.outcome for f in summary.files] == ["busy"]
    assert "another process" in (summary.files[0].message or "")
    assert server.seen == []
    assert not video.exists()
    async with downloader(ledger, clock) as dl:  # the holder is gone: the file is ours now
        again = await dl.download([task], tmp_path)
    assert [f.outcome for f in again.files] == ["downloaded"]


async def test_a_holder_that_crashed_leaves_no_lock_that_blocks(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task, video, holder = await _held_elsewhere(server, ledger, clock, tmp_path)
    holder.kill()  # SIGKILL: no cleanup of any kind runs
    await holder.wait()
    assert lock_path(video).exists()  # its lock file stays; the lock died with the process
    async with downloader(ledger, clock) as dl:
        summary = await dl.download([task], tmp_path)
    assert [f.outcome for f in summary.files] == ["downloaded"]
    assert video.read_bytes() == VIDEOS["v0.mp4"]
    assert not lock_path(video).exists()  # and a finished download leaves no lock file


async def test_a_template_that_gives_two_files_one_path_is_refused_before_any_request(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    tasks = [
        succeeded(ledger, clock, f"spring-{i}", video_result(server, f"v{i}.mp4")) for i in range(2)
    ]
    async with downloader(ledger, clock, template="{batch}/{index}.{ext}") as dl:
        with pytest.raises(TemplateError, match=r"same path .*add \{external_task_id\}"):
            await dl.download(tasks, tmp_path)
    assert server.seen == []


async def test_a_file_of_another_task_is_never_taken_nor_overwritten(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    first = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4"))
    second = succeeded(ledger, clock, "spring-2", video_result(server, "v1.mp4"))
    async with downloader(ledger, clock, template="{batch}.{ext}") as dl:
        await dl.download([first], tmp_path)
        clash = await dl.download([second], tmp_path)
    [outcome] = clash.files
    assert outcome.outcome == "failed"
    assert "already holds the file of task" in (outcome.message or "")
    assert (tmp_path / "spring.mp4").read_bytes() == VIDEOS["v0.mp4"]
    assert server.requests_for("v1.mp4") == []
    [rec] = ledger.downloads(second.local_id)
    assert rec.state == "failed"


async def test_a_ledger_error_is_raised_as_itself_not_as_a_group(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    task = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4"))
    ghost = replace(task, local_id=999)  # a task the ledger does not hold
    async with downloader(ledger, clock) as dl:
        with pytest.raises(UnknownTask):
            await dl.download([ghost], tmp_path)


async def test_watermarked_variants_are_collected_beside_the_files_when_asked(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    result = {
        "videos": [{"id": "v", "url": server.url("v0.mp4"), "watermark_url": server.url("v1.mp4")}]
    }
    task = succeeded(ledger, clock, "spring-1", result)
    async with downloader(ledger, clock) as plain:
        assert outcomes(await plain.download([task], tmp_path)) == [
            ("spring-1_0.mp4", "downloaded")
        ]
    async with downloader(ledger, clock, watermark=True) as marked:
        assert outcomes(await marked.download([task], tmp_path)) == [
            ("spring-1_0.mp4", "skipped"),
            ("spring-1_0_watermark.mp4", "downloaded"),
        ]
    assert (tmp_path / "spring" / "spring-1_0_watermark.mp4").read_bytes() == VIDEOS["v1.mp4"]
    side = read_sidecar(tmp_path / "spring" / "spring-1_0_watermark.mp4")["file"]
    assert (side["variant"], side["url"]) == ("watermark", server.url("v1.mp4"))
    assert sorted(r.index for r in ledger.downloads(task.local_id)) == [0, 1000]


async def test_a_file_whose_sidecar_names_another_task_is_left_alone(
    server: MediaServer, ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    # Collected into the same folder from another ledger: only the sidecar says whose it is.
    other = tmp_path / "other.db"
    with Ledger.open(f"sqlite:///{other}", clock=clock) as elsewhere:
        theirs = succeeded(elsewhere, clock, "autumn-1", video_result(server, "v2.mp4"))
        async with downloader(elsewhere, clock, template="clip.{ext}") as dl:
            await dl.download([theirs], tmp_path)
    mine = succeeded(ledger, clock, "spring-1", video_result(server, "v0.mp4"))
    async with downloader(ledger, clock, template="clip.{ext}") as dl:
        summary = await dl.download([mine], tmp_path)
    assert "already holds the file of task autumn-1" in (summary.files[0].message or "")
    assert (tmp_path / "clip.mp4").read_bytes() == VIDEOS["v2.mp4"]
