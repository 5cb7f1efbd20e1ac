"""``klingwatch download`` against the sandbox's real media on a real loopback socket."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import klingwatch
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.clock import ManualClock
from klingwatch.sandbox import SandboxConfig, create_app, serve_in_thread
from klingwatch.sandbox.media import sample_mp4
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

API_KEY = "sandbox-key"
DAY = 86_400.0
FAST = {"queue_p50": 10.0, "queue_p95": 10.0, "run_p50": 60.0, "run_p95": 60.0}


@dataclass
class Kling:
    """A sandbox on a socket, the media requests it saw, and the clock it runs on.

    ``cuts[path]`` lists, for the next answers on that media path, after how many body bytes the
    connection is dropped (a proxy in front of the sandbox cutting the transfer).
    """

    base: str
    clock: ManualClock
    media: list[tuple[str, str | None]] = field(default_factory=list)
    cuts: dict[str, list[int]] = field(default_factory=dict)


@pytest.fixture
def kling() -> Iterator[Kling]:
    clock = ManualClock(start=time.time())
    config = SandboxConfig(
        api_keys=(API_KEY,),
        failure_rate=0.0,
        straggler_rate=0.0,
        durations=dict.fromkeys(("video", "image"), FAST),
    )
    sandbox = create_app(config, clock=clock)
    seen: list[tuple[str, str | None]] = []
    cuts: dict[str, list[int]] = {}

    async def proxy(scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/sandbox/media/"):
            await sandbox(scope, receive, send)
            return
        headers = dict(scope["headers"])
        seen.append((path, headers[b"range"].decode() if b"range" in headers else None))
        plan = cuts.get(path)
        if not plan:
            await sandbox(scope, receive, send)
            return
        room = plan.pop(0)

        async def cutting(message: Any) -> None:
            nonlocal room
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if len(body) > room:
                    await send(
                        {"type": "http.response.body", "body": body[:room], "more_body": True}
                    )
                    raise ConnectionAbortedError("the proxy cut the connection")
                room -= len(body)
            await send(message)

        await sandbox(scope, receive, cutting)

    with serve_in_thread(app=proxy) as base:
        yield Kling(base=base, clock=clock, media=seen, cuts=cuts)


def make_batch(kling: Kling, db: str, *, videos: int = 2, image_tasks: int = 1) -> list[int]:
    """Tasks created on the sandbox, finished, and recorded as succeeded in the ledger."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    made: list[tuple[str, str, str]] = []
    with httpx.Client(base_url=kling.base, headers=headers) as http:
        for i in range(videos):
            r = http.post("/v1/videos/text2video", json={"prompt": f"clip {i}"})
            made.append(("text2video", "/v1/videos/text2video", r.json()["data"]["task_id"]))
        for i in range(image_tasks):
            r = http.post("/v1/images/generations", json={"prompt": f"still {i}", "n": 2})
            made.append(("image_generation", "/v1/images/generations", r.json()["data"]["task_id"]))
        kling.clock.advance(120)
        done = [(product, http.get(f"{path}/{tid}").json()["data"]) for product, path, tid in made]
    ids = []
    with Ledger.open(db) as ledger:
        for n, (product, data) in enumerate(done):
            assert data["task_status"] == "succeed"
            [local_id] = ledger.add_tasks(
                "spring",
                [NewTask(product=product, request={"n": n}, external_task_id=f"spring-{n}")],
            ).added
            ledger.apply(
                Observation(
                    status=LocalStatus.SUCCEED,
                    source=Source.GET,
                    at=time.time(),
                    local_id=local_id,
                    task_id=data["task_id"],
                    kling_updated_ms=data["updated_at"],
                    result=data["task_result"],
                )
            )
            ids.append(local_id)
    return ids


def download(db: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["download", "--db", db, *args], env=env)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_a_batch_is_downloaded_and_a_rerun_skips_it_without_a_request(
    kling: Kling, db: str, tmp_path: Path
) -> None:
    make_batch(kling, db)
    out = tmp_path / "out"
    first = download(db, "--dir", str(out))
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert sum(line.startswith("downloaded") for line in lines) == 4
    assert "4 downloaded" in lines[-1]
    assert "0 failed" in lines[-1]
    for n in (0, 1):
        video = out / "spring" / f"spring-{n}_0.mp4"
        assert video.read_bytes() == sample_mp4()
        assert json.loads((out / "spring" / f"spring-{n}_0.mp4.json").read_text())["file"][
            "size"
        ] == len(sample_mp4())
    assert (out / "spring" / "spring-2_1.png").read_bytes().startswith(b"\x89PNG")
    requests = len(kling.media)
    assert requests == 4

    second = download(db, "--dir", str(out))
    assert second.exit_code == 0, second.output
    assert sum(line.startswith("skipped") for line in second.stdout.splitlines()) == 4
    assert "0 downloaded" in second.stdout
    assert len(kling.media) == requests


def test_json_output_lists_every_file(kling: Kling, db: str, tmp_path: Path) -> None:
    make_batch(kling, db, videos=1, image_tasks=0)
    result = download(db, "--dir", str(tmp_path / "o"), "--json", "--template", "{task_id}.{ext}")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [file] = data["files"]
    assert file["outcome"] == "downloaded"
    assert file["size"] == len(sample_mp4())
    assert Path(file["path"]).parent == tmp_path / "o"
    assert (data["downloaded"], data["failed"], data["ok"]) == (1, 0, True)


def test_expired_results_are_reported_without_failing_the_command(
    kling: Kling, db: str, tmp_path: Path
) -> None:
    make_batch(kling, db, videos=1, image_tasks=0)
    kling.clock.advance(31 * DAY)  # the sandbox now answers 404 for the result
    result = download(db, "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("expired")]
    assert "HTTP 404" in line
    assert "30 days" in line
    assert "1 expired" in result.stdout


def test_a_file_that_cannot_be_fetched_makes_the_command_fail(db: str, tmp_path: Path) -> None:
    with Ledger.open(db) as ledger:
        [local_id] = ledger.add_tasks(
            "b", [NewTask(product="text2video", request={}, external_task_id="x")]
        ).added
        ledger.apply(
            Observation(
                status=LocalStatus.SUCCEED,
                source=Source.GET,
                at=time.time(),
                local_id=local_id,
                kling_updated_ms=round(time.time() * 1000),
                # Port 9 (discard) on loopback: nothing listens, every connection is refused.
                result={"videos": [{"id": "v", "url": "http://127.0.0.1:9/v.mp4"}]},
            )
        )
    # The retries' backoff runs on the (scaled) engine clock: a thousandth of the real wait.
    result = download(db, "--dir", str(tmp_path), env={"KLINGWATCH_TIME_SCALE": "0.001"})
    assert result.exit_code == 1, result.output
    assert "failed" in result.stdout
    assert "after 5 attempts" in result.stdout


def test_a_bad_template_is_a_usage_error(db: str) -> None:
    result = download(db, "--template", "{batch}/{prompt}.{ext}")
    assert result.exit_code == 2
    assert "unknown field {prompt}" in result.output


def test_an_unknown_batch_is_a_usage_error(db: str) -> None:
    Ledger.open(db).close()
    result = download(db, "--batch", "nope")
    assert result.exit_code == 2
    assert "no batch named 'nope'" in result.output


def test_nothing_succeeded_means_nothing_to_do(db: str) -> None:
    Ledger.open(db).close()
    result = download(db)
    assert result.exit_code == 0
    assert "nothing to download" in result.stdout


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write into: a read-only tmpfs as root, else mode 0o500."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    mount = shutil.which("mount")
    assert mount is not None
    subprocess.run([mount, "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_an_unwritable_folder_stops_with_one_clear_error(
    kling: Kling, db: str, read_only: Path
) -> None:
    make_batch(kling, db)
    result = download(db, "--dir", str(read_only))
    assert result.exit_code == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "cannot write" in errors[0]
    assert kling.media == []


def test_a_cut_transfer_is_completed_by_the_rerun_and_every_file_matches_its_sidecar(
    kling: Kling, db: str, tmp_path: Path
) -> None:
    ids = make_batch(kling, db)
    with Ledger.open(db) as ledger:
        task = ledger.task(ids[0])
        assert task is not None
        assert task.result is not None
        url = task.result["videos"][0]["url"]
    path = httpx.URL(url).path
    # The first answer is cut after 10 kB; the next five die at once, so this run gives up.
    kling.cuts[path] = [10_000, 0, 0, 0, 0, 0]
    out = tmp_path / "out"
    fast = {"KLINGWATCH_TIME_SCALE": "0.001"}  # the retries' backoff, a thousandth as long
    first = download(db, "--dir", str(out), env=fast)
    assert first.exit_code == 1, first.output
    [failed] = [ln for ln in first.stdout.splitlines() if ln.startswith("failed")]
    assert "spring-0_0.mp4" in failed
    assert "the partial file is kept" in failed
    assert "3 downloaded" in first.stdout
    assert not (out / "spring" / "spring-0_0.mp4").exists()
    assert (out / "spring" / ".spring-0_0.mp4.part").stat().st_size == 10_000

    before = len(kling.media)
    second = download(db, "--dir", str(out), env=fast)
    assert second.exit_code == 0, second.output
    assert kling.media[before:] == [(path, "bytes=10000-")]
    assert re.search(r"^downloaded +\S*spring-0_0\.mp4 .*\(resumed\)$", second.stdout, re.M)
    assert "1 downloaded" in second.stdout
    assert "3 skipped" in second.stdout
    files = sorted(p for p in (out / "spring").iterdir() if not p.name.endswith(".json"))
    assert [p.name for p in files] == [
        "spring-0_0.mp4",
        "spring-1_0.mp4",
        "spring-2_0.png",
        "spring-2_1.png",
    ]
    assert (out / "spring" / "spring-0_0.mp4").read_bytes() == sample_mp4()
    for file in files:
        side = json.loads(file.with_name(file.name + ".json").read_text())["file"]
        data = file.read_bytes()
        assert (side["size"], side["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.slow
def test_submit_with_download_waits_for_the_files_of_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SandboxConfig(
        api_keys=(API_KEY,),
        time_scale=0.01,
        failure_rate=0.0,
        straggler_rate=0.0,
        durations={"video": FAST},
    )
    monkeypatch.chdir(tmp_path)
    Path("foxes.txt").write_text("".join(f"a fox, take {i}\n" for i in range(4)))
    with serve_in_thread(config) as url:
        env = {
            "KLING_API_KEY": API_KEY,
            "KLING_API_BASE": url,
            "KLINGWATCH_TIME_SCALE": "0.01",
            "KLINGWATCH_DB": f"sqlite:///{tmp_path / 'ledger.db'}",
        }
        done = CliRunner().invoke(
            app, ["submit", "foxes.txt", "--download", "clips", "--wait", "--json"], env=env
        )
        assert done.exit_code == 0, done.output
    videos = sorted((tmp_path / "clips" / "foxes").glob("*.mp4"))
    assert len(videos) == 4
    for video in videos:
        assert video.read_bytes() == sample_mp4()
        side = json.loads(video.with_name(video.name + ".json").read_text())
        assert side["file"]["sha256"] == hashlib.sha256(sample_mp4()).hexdigest()
        assert side["request"]["prompt"].startswith("a fox, take")


# -- from another working directory: complete stays complete --------------------------------------
@pytest.mark.slow
def test_from_another_folder_complete_files_are_found_and_never_marked_failed(
    kling: Kling, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    db = f"sqlite:///{here / 'ledger.db'}"
    monkeypatch.chdir(here)
    make_batch(kling, db)
    with Ledger.open(db) as ledger:
        ledger.ensure_batch("spring", download_dir="out")  # relative, as a user types it
    env = {"KLINGWATCH_DB": db, "KLING_API_KEY": API_KEY, "KLING_API_BASE": kling.base}
    first = klingwatch("download", cwd=here, env=env)
    assert first.returncode == 0, first.stderr
    assert "4 downloaded" in first.stdout
    on_disk = sorted(p for p in (here / "out" / "spring").iterdir() if p.suffix in (".mp4", ".png"))
    assert len(on_disk) == 4
    kling.clock.advance(31 * DAY)  # Kling has deleted the results: nothing can be fetched again

    def records() -> list[tuple[str, str | None]]:
        with Ledger.open(db) as ledger:
            return [(d.state, d.path) for d in ledger.downloads()]

    complete = records()
    assert {state for state, _ in complete} == {"complete"}
    assert sorted(Path(p or "") for _, p in complete) == on_disk

    again = klingwatch("download", cwd=elsewhere, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 downloaded (0 B), 4 skipped, 0 expired, 0 failed" in again.stdout
    wrong = klingwatch("download", "--dir", str(elsewhere / "wrong"), cwd=elsewhere, env=env)
    assert wrong.returncode == 0, wrong.stdout + wrong.stderr
    skipped = [line for line in wrong.stdout.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 4
    assert all(f"already complete at {here / 'out' / 'spring'}" in line for line in skipped)
    engine = klingwatch("watch", "--until-done", cwd=elsewhere, env=env)
    assert engine.returncode == 0, engine.stderr
    assert list(elsewhere.iterdir()) == []  # nothing downloaded into the wrong place
    assert records() == complete

    on_disk[0].unlink()  # a file deleted by hand, after Kling deleted its original
    gone = klingwatch("download", cwd=elsewhere, env=env)
    assert gone.returncode == 1
    [missing] = [line for line in gone.stdout.splitlines() if line.startswith("missing")]
    assert f"the ledger has this file complete at {on_disk[0]}, but it is no longer there" in (
        missing
    )
    assert "1 missing" in gone.stdout
    assert records() == complete  # reported, not turned into a failure
