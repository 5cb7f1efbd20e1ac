"""``spend``, ``resume --raise-cap`` and the held tasks in ``status``, ``tasks`` and ``show``."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from cli_process import klingwatch, one_line
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.clock import ManualClock
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

T0 = 1_767_225_600.0  # 2026-01-01 UTC


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Batch ``capped`` (cap 2 units): 2 tasks sent (one charged 1.5 units, one 0.3 USD), 2
    held; batch ``free``: one queued task, no cap."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger.open(url, clock=ManualClock(start=T0)) as ledger:
        ledger.ensure_batch("capped")
        ledger.set_cap("capped", Decimal(2))
        ids = ledger.add_tasks(
            "capped",
            [
                NewTask(
                    "text2video", {"prompt": f"p{i}"}, f"c-{i}", mode="std", units_estimated="1"
                )
                for i in range(4)
            ],
        ).added
        claim = ledger.mark_sending(ids, T0 + 1)
        assert claim.held == ids[2:]
        for local_id, charge in zip(
            ids[:2], ({"units": "1.5"}, {"cash_amount": "0.3"}), strict=True
        ):
            ledger.apply(
                Observation(
                    LocalStatus.SUCCEED,
                    Source.GET,
                    T0 + 90,
                    local_id=local_id,
                    kling_updated_ms=int((T0 + 86_400 + 90) * 1000),  # finished the next day
                    cash_currency="USD" if "cash_amount" in charge else None,
                    **charge,
                )
            )
        ledger.add_tasks(
            "free", [NewTask("text2video", {"prompt": "x"}, "f-0", units_estimated="2.5")]
        )
    return url


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_spend_json_per_batch_with_the_total(db: str) -> None:
    report = json.loads(run("spend", "--db", db, "--json"))
    assert report["by"] == ["batch"]
    assert report["rows"] == [
        {
            "batch": "capped",
            "tasks": 4,
            "charged": 2,
            "units_estimated": "4",
            "units_spent": "1.5",
            "cash": [{"currency": "USD", "amount": "0.3"}],
        },
        {
            "batch": "free",
            "tasks": 1,
            "charged": 0,
            "units_estimated": "2.5",
            "units_spent": "0",
            "cash": [],
        },
    ]
    assert report["total"]["units_estimated"] == "6.5"


def test_spend_csv_by_batch_and_day(db: str) -> None:
    rows = list(csv.DictReader(io.StringIO(run("spend", "--db", db, "--by", "batch,day", "--csv"))))
    assert [(r["batch"], r["day"], r["tasks"], r["units_spent"], r["cash"]) for r in rows] == [
        ("capped", "2026-01-01", "2", "0", ""),  # the held ones, never sent: queued that day
        ("capped", "2026-01-02", "2", "1.5", "0.3 USD"),
        ("free", "2026-01-01", "1", "0", ""),
    ]


def test_spend_table_and_one_batch(db: str) -> None:
    out = run("spend", "--db", db, "--batch", "capped", "--by", "mode")
    assert "std" in out
    assert "0.3 USD" in out
    assert "total" in out


def test_held_tasks_say_why_in_status_tasks_and_show(db: str) -> None:
    status = json.loads(run("status", "--db", db, "--json"))
    assert status["held"] == [
        {"batch": "capped", "held": 2, "reason": "held: budget cap 2 units, 2 sent"}
    ]
    assert status["spend"]["units_spent"] == "1.5"
    text = run("status", "--db", db)
    assert "2 tasks of batch capped held: budget cap 2 units, 2 sent" in text
    assert "resume --raise-cap N --batch capped" in text
    tasks = run("tasks", "--db", db, "--batch", "capped")
    assert tasks.count("queued (held)") == 2
    assert tasks.count("held: budget cap 2 units, 2 sent") == 2
    show = run("show", "c-3", "--db", db)
    assert "held: budget cap 2 units, 2 sent" in show
    assert "≈1 units estimated" in show


def test_resume_raise_cap_frees_what_fits(db: str) -> None:
    out = run("resume", "--raise-cap", "3", "--batch", "capped", "--db", db)
    assert "budget cap 2 units -> 3 units (2 sent so far); 1 held tasks freed" in out
    assert "1 tasks still held: budget cap 3 units, 2 sent" in out
    again = json.loads(
        run("resume", "--raise-cap", "10", "--batch", "capped", "--db", db, "--json")
    )
    assert again["budget"]["held"] == 0
    assert again["budget"]["max_units"] == "10"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["resume", "--raise-cap", "3"], "--batch"),
        (["resume", "--raise-cap", "-3", "--batch", "capped"], "positive number"),
        (["resume", "--raise-cap", "5", "--batch", "nope"], "no batch 'nope'"),
        (["spend", "--by", "colour"], "cannot group spend by colour"),
        (["submit", "prompts.txt", "--max-units", "many"], "--max-units"),
    ],
)
def test_wrong_input_is_one_line(db: str, tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "prompts.txt").write_text("a cat\n")
    done = klingwatch(*args, "--db", db, cwd=tmp_path)
    assert done.returncode in (2, 3)
    assert says in one_line(done)


def test_a_dry_run_says_what_a_cap_would_let_through(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("".join(f"a cat, take {i}\n" for i in range(5)))
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    out = run("submit", str(tmp_path / "p.txt"), "--dry-run", "--max-units", "3.5", "--db", db)
    assert "with --max-units 3.5: 3 of 5 tasks would be sent (≈3 units)" in out
    plan = json.loads(
        run("submit", str(tmp_path / "p.txt"), "--dry-run", "--max-units", "3", "--json")
    )
    assert plan["sent_under_cap"] == {"tasks": 3, "units": "3"}
    assert not (tmp_path / "ledger.db").exists()  # a dry run writes nothing
