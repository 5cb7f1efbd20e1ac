"""Restart safety at the ledger level: a writer killed with SIGKILL mid-work leaves no
half-applied change, and running it again finishes the job with nothing lost or doubled."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from klingwatch.store import Ledger, LocalStatus

WORKER = Path(__file__).with_name("ledger_worker.py")
TASKS = 240  # with the worker's batches of 8: 90 commits in a full run


def _run_until(url: str, lines: int) -> list[str]:
    """Start the worker and SIGKILL it once it has printed ``lines`` lines (it is writing then)."""
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), url, str(TASKS), "forever"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        while len(seen) < lines:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        assert proc.stderr is not None
        errors = proc.stderr.read()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, errors
    assert len(seen) == lines, errors
    return seen


def _check_consistent(url: str) -> dict[LocalStatus, int]:
    with Ledger.open(url) as ledger:
        assert ledger.verify() == []
        entered: dict[int | None, list[LocalStatus]] = {}
        for event in ledger.recent_events(limit=10 * TASKS):
            entered.setdefault(event.local_id, []).append(event.to_status)
        # Every status entered once: no duplicate event from a re-applied report.
        for local_id, statuses in entered.items():
            assert len(statuses) == len(set(statuses)), (local_id, statuses)
        return ledger.counts()


@pytest.mark.slow
def test_killed_writers_leave_a_consistent_ledger_and_a_rerun_finishes(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()  # migrate first, so the kills land in apply, not in DDL
    for lines in (5, 37, 71):
        _run_until(ledger_url, lines)
        counts = _check_consistent(ledger_url)
        assert sum(counts.values()) == TASKS  # intents are committed once, all of them

    done = subprocess.run(
        [sys.executable, str(WORKER), ledger_url, str(TASKS)],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    assert done.stdout.strip().endswith("done")
    counts = _check_consistent(ledger_url)
    assert counts[LocalStatus.SUCCEED] == TASKS
    with Ledger.open(ledger_url) as ledger:
        timelines: dict[int | None, list[tuple[LocalStatus | None, LocalStatus]]] = {}
        for e in ledger.recent_events(limit=10 * TASKS):
            timelines.setdefault(e.local_id, []).append((e.from_status, e.to_status))
        for task in ledger.tasks():
            assert timelines[task.local_id] == [
                (None, LocalStatus.QUEUED),
                (LocalStatus.QUEUED, LocalStatus.SUBMITTED),
                (LocalStatus.SUBMITTED, LocalStatus.PROCESSING),
                (LocalStatus.PROCESSING, LocalStatus.SUCCEED),
            ]
            assert task.result == {"videos": [{"url": f"https://x/{task.external_task_id}.mp4"}]}
