"""`klingwatch demo`: the README's first command, end to end on real sockets and files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.store import Ledger, LocalStatus

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
