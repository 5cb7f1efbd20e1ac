"""`klingwatch demo`: the README's first command, end to end on real sockets and files."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from cli_process import klingwatch
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.cli.demo import MARKER, demo_batch, prepare
from klingwatch.store import Ledger, LocalStatus, NewTask

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], str]:
    folder = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(
        app, ["demo", "--dir", str(folder), "--time-scale", "0.02", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])["summary"]
    return folder, summary, result.stdout


def test_every_kind_of_outcome_happens(demo: tuple[Path, dict[str, object], str]) -> None:
    _, summary, _ = demo
    assert summary["counts"] == {"succeed": 6, "failed": 1, "rejected": 1}
    rows = {row["external_task_id"]: row for row in summary["tasks"]}  # type: ignore[attr-defined]
    assert rows["demo-refused"]["status"] == "rejected"
    assert "risk control" in rows["demo-refused"]["reason"]
    assert rows["demo-fails"]["status"] == "failed"
    assert rows["demo-fails"]["reason"]
    assert rows["demo-fox-extended"]["product"] == "video-extend"
    assert rows["demo-fox-extended"]["status"] == "succeed"
    assert rows["demo-lighthouse-pro"]["mode"] == "pro"


def test_each_change_was_reported_as_a_json_line(
    demo: tuple[Path, dict[str, object], str],
) -> None:
    _, _, stdout = demo
    changes = [json.loads(line) for line in stdout.strip().splitlines()[:-1]]
    finals = {c["external_task_id"]: c["to"] for c in changes if c["to"] in ("succeed", "failed")}
    assert finals["demo-fox"] == "succeed"
    assert finals["demo-fails"] == "failed"


def test_the_extend_continues_the_finished_video(
    demo: tuple[Path, dict[str, object], str],
) -> None:
    _, summary, _ = demo
    with Ledger.open(str(summary["ledger"])) as ledger:
        source = ledger.task("demo-fox")
        extend = ledger.task("demo-fox-extended")
        assert source is not None
        assert extend is not None
        assert source.result is not None
        assert extend.request["video_id"] == source.result["videos"][0]["id"]
        assert extend.status is LocalStatus.SUCCEED


def test_results_are_on_disk_with_sidecars(demo: tuple[Path, dict[str, object], str]) -> None:
    folder, summary, _ = demo
    media = sorted(p for p in (folder / "downloads").rglob("*") if p.suffix in (".mp4", ".png"))
    # 5 videos (fox, lighthouse, city, paper boat, extend) and 4 postcards.
    assert summary["files"] == len(media) == 9
    for path in media:
        sidecar = json.loads(path.with_name(path.name + ".json").read_text())
        assert sidecar["file"]["size"] == path.stat().st_size
        assert sidecar["file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (folder / "demo-batch.jsonl").exists()


# -- the demo's folder: it never deletes what it did not make ------------------------------------
def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _demo_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return klingwatch("demo", *args, cwd=cwd)


def _users_folder(folder: Path) -> None:
    """What a user's working folder holds: their own ledger and downloaded files."""
    with Ledger.open(f"sqlite:///{folder / 'klingwatch.db'}") as ledger:
        ledger.ensure_batch("spring", download_dir=str(folder / "downloads"))
        ledger.add_tasks("spring", [NewTask("text2video", {"prompt": "mine"}, "spring-0")])
    video = folder / "downloads" / "spring" / "spring-0_0.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42 a video I paid for")
    (folder / "notes.txt").write_text("keep me\n")


def test_a_users_folder_is_refused_and_survives_byte_for_byte(tmp_path: Path) -> None:
    _users_folder(tmp_path)
    before = _snapshot(tmp_path)

    done = _demo_subprocess("--dir", ".", cwd=tmp_path)

    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: Invalid value for --dir: ")
    assert "downloads, klingwatch.db, notes.txt, which the demo did not make" in line
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert _snapshot(tmp_path) == before
    assert not (tmp_path / MARKER).exists()


def test_a_demo_folder_with_someone_elses_batch_in_its_ledger_is_refused(tmp_path: Path) -> None:
    _users_folder(tmp_path)
    (tmp_path / MARKER).write_text("made by the demo, then used for real work\n")
    before = _snapshot(tmp_path)

    done = _demo_subprocess("--dir", str(tmp_path), cwd=tmp_path.parent)

    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "also holds batches the demo did not make (spring)" in line
    assert _snapshot(tmp_path) == before


def test_the_demo_reuses_its_own_folder_afresh(tmp_path: Path) -> None:
    folder = tmp_path / "fresh" / "demo"
    first = _demo_subprocess("--dir", str(folder), "--time-scale", "0.01", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (folder / MARKER).exists()
    (folder / "downloads" / "demo" / "stale-from-last-run.png").write_bytes(b"old")

    again = _demo_subprocess("--dir", str(folder), "--time-scale", "0.01", "--json", cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])["summary"]
    assert summary["counts"] == {"succeed": 6, "failed": 1, "rejected": 1}
    with Ledger.open(str(summary["ledger"])) as ledger:
        assert sum(ledger.counts().values()) == 8  # a fresh ledger, not the last run's
    assert not (folder / "downloads" / "demo" / "stale-from-last-run.png").exists()


def test_a_demo_folder_from_before_the_marker_is_recognised(tmp_path: Path) -> None:
    (tmp_path / "demo-batch.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in demo_batch())
    )
    (tmp_path / "downloads" / "demo").mkdir(parents=True)
    prepare(tmp_path)
    assert (tmp_path / MARKER).exists()
    assert not (tmp_path / "downloads").exists()
