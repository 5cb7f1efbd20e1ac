"""`klingwatch status` warns about results Kling is about to delete (issue: collect)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

DAY = 86400.0


def _succeeded(ledger: Ledger, name: str, ended: float) -> None:
    [local_id] = ledger.add_tasks("b", [NewTask("text2video", {"prompt": name}, name)]).added
    ledger.apply(
        Observation(
            LocalStatus.SUCCEED,
            Source.GET,
            ended,
            local_id=local_id,
            task_id=f"9{local_id:017d}",
            kling_created_ms=int((ended - 100) * 1000),
            kling_updated_ms=int(ended * 1000),
            result={"videos": [{"id": "v", "url": f"https://cdn/{name}.mp4"}]},
        )
    )


def test_status_flags_results_about_to_be_deleted(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    now = time.time()
    with Ledger.open(db) as ledger:
        _succeeded(ledger, "fresh", now - 1 * DAY)  # deleted in 29 days: fine
        _succeeded(ledger, "soon", now - 27 * DAY)  # deleted in 3 days: warn
        _succeeded(ledger, "gone", now - 31 * DAY)  # already deleted: lost

    status = json.loads(CliRunner().invoke(app, ["status", "--db", db, "--json"]).stdout)
    assert [e["external_task_id"] for e in status["expiring"]] == ["soon"]
    assert abs(status["expiring"][0]["deleted_at"] - (now + 3 * DAY)) < 5
    assert status["results_lost"] == 1
    assert status["files"] == {"total": 3, "complete": 0, "expired": 0, "failed": 0}

    text = CliRunner().invoke(app, ["status", "--db", db]).stdout
    assert "1 tasks' results not downloaded yet are deleted by Kling soon" in text
    assert "first: soon" in text
    assert "run klingwatch download" in text
    assert "1 tasks' results were deleted by Kling before they were downloaded" in text


def test_the_warning_window_is_a_setting(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(db) as ledger:
        _succeeded(ledger, "soon", time.time() - 20 * DAY)  # deleted in 10 days
    runner = CliRunner()
    quiet = json.loads(runner.invoke(app, ["status", "--db", db, "--json"]).stdout)
    assert quiet["expiring"] == []
    wide = runner.invoke(
        app, ["status", "--db", db, "--json"], env={"KLINGWATCH_EXPIRY_WARN_DAYS": "12"}
    )
    assert [e["external_task_id"] for e in json.loads(wide.stdout)["expiring"]] == ["soon"]
