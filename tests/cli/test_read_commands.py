"""``status``, ``tasks``, ``show``, ``stuck`` and ``export`` on a ledger in a known state."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_ledger import make_ledger
from typer.testing import CliRunner

from klingwatch.cli import app


@pytest.fixture
def db(tmp_path: Path) -> str:
    return make_ledger(tmp_path / "ledger.db")


def run(*args: str) -> str:
    # A wide terminal, so table cells are not wrapped.
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_status_json_counts_stuck_oldest_and_eta(db: str) -> None:
    status = json.loads(run("status", "--db", db, "--json"))
    assert status["total"] == 5
    assert status["counts"] == {
        "queued": 2,
        "unknown": 0,
        "submitted": 0,
        "processing": 1,
        "succeed": 1,
        "failed": 1,
        "rejected": 0,
    }
    assert status["active"] == 1
    assert status["stuck"] == 1
    assert status["oldest_active"]["external_task_id"] == "ext-running"
    assert status["eta_seconds"] is not None


def test_status_of_one_batch(db: str) -> None:
    status = json.loads(run("status", "--db", db, "--json", "--batch", "b2"))
    assert status["total"] == 1
    assert status["counts"]["queued"] == 1
    text = run("status", "--db", db)
    assert "processing 1" in text
    assert "stuck 1" in text


def test_tasks_filters_by_status_and_prints_json_or_a_table(db: str) -> None:
    rows = json.loads(run("tasks", "--db", db, "--status", "succeed,failed", "--json"))
    assert {r["external_task_id"]: r["status"] for r in rows} == {
        "ext-done": "succeed",
        "ext-failed": "failed",
    }
    table = run("tasks", "--db", db, "--status", "active")
    assert "ext-running" in table
    assert "ext-done" not in table


def _at(columns: int, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_tasks_fit_80_columns_and_wide_shows_the_full_ids(db: str) -> None:
    table = _at(80, "tasks", "--db", db)
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "ext-running" in table
    assert "processing" in table
    assert "Image pixel is invalid" in " ".join(line.strip("│ ") for line in table.splitlines())
    wide = _at(80, "tasks", "--db", db, "--wide")
    rows = [line for line in wide.splitlines() if "ext-" in line]
    assert len(rows) == 5
    assert any("800000000000000000" in row and "text2video kling-v2-6 std" in row for row in rows)
    assert all("…" not in row for row in rows)  # nothing cut short


def test_tasks_refuses_an_unknown_status_with_a_hint(db: str) -> None:
    result = CliRunner().invoke(app, ["tasks", "--db", db, "--status", "finished"])
    assert result.exit_code == 2
    assert "unknown status 'finished'" in result.output


def test_show_prints_the_timeline(db: str) -> None:
    shown = json.loads(run("show", "ext-failed", "--db", db, "--json"))
    assert shown["status"] == "failed"
    assert shown["status_msg"] == "Image pixel is invalid"
    assert [(e["from"], e["to"], e["source"]) for e in shown["events"]] == [
        (None, "queued", "manual"),
        ("queued", "submitted", "create"),
        ("submitted", "processing", "list"),
        ("processing", "failed", "list"),
    ]
    assert (shown["events"][0]["at_ms"], shown["events"][0]["at_iso"]) == (
        1_767_225_600_000,
        "2026-01-01T00:00:00.000Z",
    )
    text = run("show", "800000000000000001", "--db", db)
    assert "timeline" in text
    assert "processing" in text


def test_show_of_an_unknown_task_is_one_clear_error(db: str) -> None:
    result = CliRunner().invoke(app, ["show", "nope", "--db", db])
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert "no task 'nope'" in line


def test_stuck_lists_flagged_tasks_with_their_reason(db: str) -> None:
    rows = json.loads(run("stuck", "--db", db, "--json"))
    assert [(r["external_task_id"], r["stuck_reason"]) for r in rows] == [
        ("ext-running", "processing for 20m00s, past its p99")
    ]
    assert "past its p99" in run("stuck", "--db", db)


def test_export_json_has_one_record_per_task_with_times_results_and_files(db: str) -> None:
    records = {r["external_task_id"]: r for r in json.loads(run("export", "--db", db))}
    assert len(records) == 5
    done = records["ext-done"]
    assert done["status"] == "succeed"
    assert done["task_id"] == "800000000000000000"
    # Every instant twice: epoch ms and ISO-8601 UTC, Kling's and klingwatch's alike.
    assert (done["kling_created_at_ms"], done["kling_created_at_iso"]) == (
        1_767_225_601_000,
        "2026-01-01T00:00:01.000Z",
    )
    assert done["kling_updated_at_ms"] == 1_767_225_691_000
    assert done["kling_updated_at_iso"] == "2026-01-01T00:01:31.000Z"
    assert (done["queued_at_ms"], done["queued_at_iso"]) == (
        1_767_225_600_000,
        "2026-01-01T00:00:00.000Z",
    )
    assert done["sent_at_ms"] == 1_767_225_601_000
    assert (done["detected_at_ms"], done["detected_at_iso"]) == (
        1_767_225_693_000,
        "2026-01-01T00:01:33.000Z",
    )
    assert (done["stuck"], records["ext-running"]["stuck"]) == (False, True)
    assert not any(key.endswith("_at") for key in done)  # no instant without its unit
    assert done["result_urls"] == ["https://cdn/x.mp4"]
    assert done["units"] == "1.5"
    assert done["downloaded_files"] == ["/data/b1/ext-done.mp4"]
    assert records["ext-failed"]["status_msg"] == "Image pixel is invalid"
    assert records["ext-waiting"]["task_id"] is None


def test_export_csv_to_a_file_of_one_batch(db: str, tmp_path: Path) -> None:
    out = tmp_path / "b2.csv"
    CliRunner().invoke(app, ["export", "--db", db, "--batch", "b2", "-f", "csv", "-o", str(out)])
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["external_task_id"], r["status"], r["batch"]) for r in rows] == [
        ("ext-other", "queued", "b2")
    ]
    assert rows[0]["kling_updated_at_ms"] == ""  # queued: Kling has not seen it yet
    assert rows[0]["queued_at_iso"] == "2026-01-01T00:00:00.000Z"
    assert rows[0]["stuck"] == "false"


def test_export_csv_writes_booleans_as_true_false_and_both_time_forms(db: str) -> None:
    rows = {
        r["external_task_id"]: r
        for r in csv.DictReader(io.StringIO(run("export", "--db", db, "-f", "csv")))
    }
    assert {name: r["stuck"] for name, r in rows.items()} == {
        "ext-done": "false",
        "ext-failed": "false",
        "ext-running": "true",
        "ext-waiting": "false",
        "ext-other": "false",
    }
    done = rows["ext-done"]
    assert (done["finished_at_ms"], done["finished_at_iso"]) == (
        "1767225691000",
        "2026-01-01T00:01:31.000Z",
    )
    assert done["result_urls"] == "https://cdn/x.mp4"
    assert rows["ext-waiting"]["task_id"] == ""


def test_export_refuses_an_unknown_format(db: str) -> None:
    result = CliRunner().invoke(app, ["export", "--db", db, "-f", "xml"])
    assert result.exit_code == 2
    assert "json or csv" in result.output
