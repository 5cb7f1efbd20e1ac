"""What a person (or a script) watching the engine sees: live view, plain lines, JSON lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from klingwatch.cli.live import JsonReporter, LiveView, PlainReporter, make_reporter, snapshot
from klingwatch.clock import ManualClock
from klingwatch.store import Change, Ledger, LocalStatus, NewTask, Observation, Source
from klingwatch.store.async_ledger import AsyncLedger

T0 = 1_767_225_600.0


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    clock = ManualClock(start=T0)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    ledger.add_tasks(
        "shots", [NewTask("text2video", {"prompt": f"p{i}"}, f"shot-{i}") for i in range(4)]
    )
    return ledger


def see(ledger: Ledger, ext: str, status: LocalStatus, msg: str | None = None) -> list[Change]:
    obs = Observation(
        status, Source.GET, T0 + 60, external_task_id=ext, task_id=f"1{ext[-1]}", status_msg=msg
    )
    return ledger.apply_many([obs])


async def test_plain_lines_name_the_task_the_move_and_a_failure_reason(ledger: Ledger) -> None:
    out = io.StringIO()
    async with PlainReporter(
        AsyncLedger(ledger), clock=ManualClock(start=T0), stream=out
    ) as reporter:
        await reporter.changes(see(ledger, "shot-0", LocalStatus.SUBMITTED))
        await reporter.changes(see(ledger, "shot-0", LocalStatus.FAILED, "Image pixel is invalid"))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("shot-0 (10)  queued -> submitted")
    assert lines[1].endswith("shot-0 (10)  submitted -> failed  reason: Image pixel is invalid")


async def test_json_lines_are_one_object_per_change(ledger: Ledger) -> None:
    out = io.StringIO()
    async with JsonReporter(
        AsyncLedger(ledger), clock=ManualClock(start=T0), stream=out
    ) as reporter:
        await reporter.changes(see(ledger, "shot-1", LocalStatus.PROCESSING))
    [line] = out.getvalue().splitlines()
    assert json.loads(line) == {
        "at": T0,
        "local_id": 2,
        "external_task_id": "shot-1",
        "task_id": "11",
        "batch": "shots",
        "from": "queued",
        "to": "processing",
        "status_msg": None,
    }


async def test_the_live_view_shows_progress_changes_failures_and_alerts(ledger: Ledger) -> None:
    see(ledger, "shot-0", LocalStatus.SUCCEED)
    see(ledger, "shot-2", LocalStatus.PROCESSING)
    ledger.add_alert("paused", "submissions paused: resource pack exhausted (1102)", T0)
    console = Console(file=io.StringIO(), width=120, record=True)
    view = LiveView(AsyncLedger(ledger), console=console, clock=ManualClock(start=T0 + 120))
    await view.changes(
        see(ledger, "shot-1", LocalStatus.FAILED, "Failure to pass the risk control")
    )
    console.print(view.render(snapshot(ledger, None, T0 + 120)))
    text = console.export_text()
    assert "shots" in text
    assert "2/4" in text  # succeed + failed are done
    assert "queued 1" in text
    assert "processing 1" in text
    assert "shot-1 (11)  queued -> failed" in text  # the latest changes
    assert "Failure to pass the risk control" in text  # needs a look
    assert "submissions paused: resource pack exhausted (1102)" in text


def test_make_reporter_picks_by_terminal_and_flag(ledger: Ledger) -> None:
    pipe = Console(file=io.StringIO(), force_terminal=False)
    tty = Console(file=io.StringIO(), force_terminal=True)
    aledger = AsyncLedger(ledger)
    assert isinstance(make_reporter(aledger, console=pipe), PlainReporter)
    assert isinstance(make_reporter(aledger, console=tty), LiveView)
    assert isinstance(make_reporter(aledger, json_lines=True, console=tty), JsonReporter)
