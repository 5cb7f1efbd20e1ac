"""Single-file transfers against a real HTTP server on loopback: resume, verify, refuse, stop."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from media_server import (
    MediaServer,
    etag_of,
    mp4_bytes,
    png_bytes,
    read_only_dir,
    serve,
    small_disk,
)

from klingwatch.clock import ManualClock
from klingwatch.monitor.fetch import (
    ExpiredURL,
    Fetcher,
    NotMedia,
    StorageError,
    TransferFailed,
    open_part,
    part_path,
    validator_of,
    validator_path,
)

VIDEO = mp4_bytes(600_000)


@pytest.fixture(scope="module")
def running() -> Iterator[MediaServer]:
    with serve(MediaServer()) as app:
        yield app


@pytest.fixture
def server(running: MediaServer) -> MediaServer:
    return running.reset({"a.mp4": VIDEO, "b.png": png_bytes()})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def fetcher(client: httpx.AsyncClient, clock: ManualClock, **kw: object) -> Fetcher:
    return Fetcher(client, clock=clock, **kw)  # type: ignore[arg-type]


async def test_a_complete_download_is_byte_identical_and_leaves_no_part_file(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    dest = tmp_path / "a.mp4"
    got = await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert dest.read_bytes() == VIDEO
    assert got.size == len(VIDEO)
    assert got.sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert got.format == "mp4"
    assert not part_path(dest).exists()
    assert [s.range for s in server.requests_for("a.mp4")] == [None]


async def test_a_cut_connection_resumes_with_range_and_the_file_is_byte_identical(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    server.cut_after["a.mp4"] = [200_000]
    dest = tmp_path / "a.mp4"
    got = await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    seen = server.requests_for("a.mp4")
    assert len(seen) == 2
    assert seen[0].range is None
    # The retry asked only for what was missing (the client got at least the part before the cut).
    assert seen[1].range is not None
    resumed_from = int(seen[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= 200_000
    assert got.resumed
    assert dest.read_bytes() == VIDEO
    assert got.sha256 == hashlib.sha256(VIDEO).hexdigest()
    assert not part_path(dest).exists()


async def test_a_part_file_left_by_an_earlier_run_is_resumed(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    dest = tmp_path / "a.mp4"
    part_path(dest).write_bytes(VIDEO[:123_456])
    got = await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert [s.range for s in server.requests_for("a.mp4")] == ["bytes=123456-"]
    assert dest.read_bytes() == VIDEO
    assert got.sha256 == hashlib.sha256(VIDEO).hexdigest()


async def test_a_server_that_ignores_range_restarts_the_file_from_zero(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    server.ignore_range.add("a.mp4")
    dest = tmp_path / "a.mp4"
    part_path(dest).write_bytes(b"garbage that must not end up in the file")
    got = await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert dest.read_bytes() == VIDEO
    assert not got.resumed
    assert got.sha256 == hashlib.sha256(VIDEO).hexdigest()


async def _cut_and_keep_the_part(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, dest: Path
) -> None:
    """A first run that stopped after 200 000 bytes of a.mp4, its .part kept."""
    server.cut_after["a.mp4"] = [200_000] + [0] * 5
    with pytest.raises(TransferFailed):
        await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert 0 < part_path(dest).stat().st_size <= 200_000
    server.cut_after.pop("a.mp4")


async def test_a_resume_carries_if_range_with_the_etag_of_the_first_answer(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    dest = tmp_path / "a.mp4"
    await _cut_and_keep_the_part(server, client, clock, dest)
    got = await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    seen = server.requests_for("a.mp4")
    assert seen[0].if_range is None  # the first answer is whole: nothing to guard
    assert {s.if_range for s in seen[1:]} == {etag_of(VIDEO)}
    assert got.resumed
    assert dest.read_bytes() == VIDEO
    assert names(tmp_path) == ["a.mp4"]  # neither .part nor its validator stays


async def test_a_file_changed_on_the_server_restarts_from_zero_instead_of_splicing(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    dest = tmp_path / "a.mp4"
    await _cut_and_keep_the_part(server, client, clock, dest)
    changed = mp4_bytes(len(VIDEO), seed=99)  # same length: only the validator tells them apart
    server.files["a.mp4"] = changed
    got = await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    last = server.requests_for("a.mp4")[-1]
    assert (last.range is not None, last.if_range) == (True, etag_of(VIDEO))
    assert not got.resumed  # the server answered 200: the whole new file
    assert dest.read_bytes() == changed
    assert got.sha256 == hashlib.sha256(changed).hexdigest()


async def test_a_server_that_ignores_if_range_is_caught_by_the_etag_of_its_206(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    dest = tmp_path / "a.mp4"
    await _cut_and_keep_the_part(server, client, clock, dest)
    changed = mp4_bytes(len(VIDEO), seed=98)
    server.files["a.mp4"] = changed
    server.ignore_if_range.add("a.mp4")
    got = await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert dest.read_bytes() == changed
    assert server.requests_for("a.mp4")[-1].range is None  # started over from byte 0
    assert got.sha256 == hashlib.sha256(changed).hexdigest()


async def test_without_a_strong_etag_if_range_carries_last_modified(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    weak = httpx.Response(200, headers={"etag": 'W/"v1"', "last-modified": "Thu, 01 Jan 2026"})
    assert validator_of(weak) == "Thu, 01 Jan 2026"
    assert validator_of(httpx.Response(200)) is None
    server.no_validators.add("a.mp4")
    dest = tmp_path / "a.mp4"
    await _cut_and_keep_the_part(server, client, clock, dest)
    assert not validator_path(part_path(dest)).exists()
    await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert server.requests_for("a.mp4")[-1].if_range is None  # nothing to guard with: plain Range
    assert dest.read_bytes() == VIDEO


async def test_transient_errors_are_retried_with_backoff_on_the_clock(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    server.fail_times["a.mp4"] = [503, 502]
    start = clock.time()
    dest = tmp_path / "a.mp4"
    await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert dest.read_bytes() == VIDEO
    assert len(server.requests_for("a.mp4")) == 3
    assert 0.5 + 1.0 <= clock.time() - start <= 1.0 + 2.0  # 1 s then 2 s, less up to half


async def test_a_connection_that_keeps_dying_without_progress_gives_up_and_keeps_the_part(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    dest = tmp_path / "a.mp4"
    part_path(dest).write_bytes(VIDEO[:1000])
    server.cut_after["a.mp4"] = [0] * 10
    with pytest.raises(TransferFailed, match="after 5 attempts"):
        await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert not dest.exists()
    assert part_path(dest).read_bytes() == VIDEO[:1000]


async def test_an_expired_url_fails_at_once_without_retrying(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    server.status["a.mp4"] = 403
    dest = tmp_path / "a.mp4"
    with pytest.raises(ExpiredURL, match=r"HTTP 403.*30 days"):
        await fetcher(client, clock).fetch(server.url("a.mp4"), dest, "video")
    assert len(server.requests_for("a.mp4")) == 1
    assert names(tmp_path) == []


async def test_an_html_page_is_refused(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    server.html.add("a.mp4")
    with pytest.raises(NotMedia, match="web page"):
        await fetcher(client, clock).fetch(server.url("a.mp4"), tmp_path / "a.mp4", "video")
    assert names(tmp_path) == []


async def test_html_bytes_labelled_as_video_are_refused(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    server.files["fake.mp4"] = b"<html><body>Access denied</body></html>" * 100
    with pytest.raises(NotMedia, match="web page"):
        await fetcher(client, clock).fetch(server.url("fake.mp4"), tmp_path / "f.mp4", "video")
    assert names(tmp_path) == []


async def test_bytes_of_the_wrong_media_type_are_refused(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    with pytest.raises(NotMedia, match="did not answer a video file"):
        await fetcher(client, clock).fetch(server.url("b.png"), tmp_path / "b.mp4", "video")
    assert names(tmp_path) == []


async def test_an_image_is_accepted_as_an_image(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    got = await fetcher(client, clock).fetch(server.url("b.png"), tmp_path / "b.png", "image")
    assert got.format == "png"
    assert (tmp_path / "b.png").read_bytes() == png_bytes()


async def test_a_full_disk_stops_with_a_clear_error_and_no_partial_file(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    with small_disk(tmp_path, 256 * 1024) as (folder, opener):
        dest = folder / "a.mp4"
        with pytest.raises(StorageError, match="disk full") as err:
            await fetcher(client, clock, opener=opener).fetch(server.url("a.mp4"), dest, "video")
        assert err.value.path == dest
        assert names(folder) == []
    assert len(server.requests_for("a.mp4")) == 1


async def test_an_unwritable_folder_stops_with_a_clear_error(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    with read_only_dir(tmp_path) as folder:
        with pytest.raises(StorageError, match=r"cannot write .*(read-only|permission denied)"):
            await fetcher(client, clock, opener=open_part).fetch(
                server.url("a.mp4"), folder / "a.mp4", "video"
            )
        assert names(folder) == []


@pytest.mark.parametrize("url", ["ftp://example.com/a.mp4", "http://[::1/a.mp4", "a.mp4"])
async def test_a_url_that_cannot_be_fetched_fails_at_once(
    client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path, url: str
) -> None:
    start = clock.time()
    with pytest.raises(TransferFailed, match="cannot be fetched"):
        await fetcher(client, clock).fetch(url, tmp_path / "a.mp4", "video")
    assert clock.time() == start  # no retry, no backoff
    assert names(tmp_path) == []


async def test_media_is_asked_for_without_content_encoding(
    server: MediaServer, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    server.cut_after["a.mp4"] = [50_000]
    await fetcher(client, clock).fetch(server.url("a.mp4"), tmp_path / "a.mp4", "video")
    assert [s.encoding for s in server.requests_for("a.mp4")] == ["identity", "identity"]
