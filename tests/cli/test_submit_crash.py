"""Issue 5, item 5: ``klingwatch submit --wait`` killed with SIGKILL at random moments, restarted
each time, against a sandbox on a real socket whose creates sometimes answer 500 although the task
was created. Every line must become exactly one Kling task, and every task must end final."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import sandbox_env

from klingwatch.kling.products import Family
from klingwatch.sandbox import ChaosConfig, SandboxConfig, TimingSpec, serve_in_thread

pytestmark = pytest.mark.slow

LINES = 200
SLOTS = 8
SCALE = 0.01  # a 30 s task takes 0.3 s
KILLS = 8
API_KEY = "crash-test-key"


def _klingwatch() -> list[str]:
    script = Path(sys.executable).with_name("klingwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "klingwatch.cli"]


def _ledger_rows(db: Path) -> list[tuple[str, str, str | None, int]]:
    """(external id, status, Kling task id, send attempts) of every ledger row, read directly."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        try:
            return list(
                conn.execute("SELECT external_task_id, status, task_id, send_attempts FROM tasks")
            )
        except sqlite3.OperationalError:  # not migrated yet
            return []


def _wait_until_sending(db: Path, proc: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    """Until the process has queued the file and sent something (or it exited)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if any(attempts for *_, attempts in _ledger_rows(db)):
            return
        time.sleep(0.05)


def test_sigkill_during_submit_never_loses_or_duplicates_a_task(tmp_path: Path) -> None:
    rng = random.Random(20260505)
    config = SandboxConfig(
        api_keys=(API_KEY,),
        slots={Family.VIDEO: SLOTS},
        time_scale=SCALE,
        failure_rate=0.05,
        straggler_rate=0.0,
        seed=3,
        durations={"video": TimingSpec(queue_p50=2, queue_p95=5, run_p50=25, run_p95=45)},
        # "5000 on create although the task was created", and some latency so that a kill
        # often lands while a create is on the wire.
        chaos=ChaosConfig(created_then_5000=0.2, latency_ms=40, jitter_ms=80),
    )
    batch_file = tmp_path / "crash.txt"
    batch_file.write_text("".join(f"a paper boat on a river, take {i}\n" for i in range(LINES)))
    db = tmp_path / "ledger.db"
    started = time.monotonic()
    with serve_in_thread(config) as url:
        env = sandbox_env(url, db, api_key=API_KEY, scale=SCALE, KLINGWATCH_SLOTS_VIDEO=str(SLOTS))
        command = [*_klingwatch(), "submit", str(batch_file), "--wait"]
        mid_send = unknown = 0
        for _ in range(KILLS):
            proc = subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _wait_until_sending(db, proc)
            time.sleep(rng.uniform(0.0, 1.5))  # a random moment while it sends and watches
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
            # Creates the process never saw answered (queued, already sent) and ambiguous ones
            # it had not looked up yet (unknown): what the next run must resolve by lookup.
            rows = _ledger_rows(db)
            mid_send += sum(1 for _, st, _, attempts in rows if st == "queued" and attempts)
            unknown += sum(1 for _, st, _, _ in rows if st == "unknown")
        final = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90
        )
        assert final.returncode == 0, final.stderr
        with httpx.Client(base_url=url) as http:
            truth: list[dict[str, Any]] = http.get("/sandbox/tasks").json()["tasks"]
            stats = http.get("/sandbox/stats").json()
    elapsed = time.monotonic() - started

    per_line = Counter(t["external_task_id"] for t in truth)
    rows = _ledger_rows(db)
    print(
        f"\ncrash test: {KILLS} kills in {elapsed:.1f} s; left behind by the kills: {mid_send} "
        f"creates without an answer, {unknown} unknown; faults injected: {stats['chaos']}, "
        f"creates refused: {stats['creates']['refused']}"
    )
    # Every line became exactly one Kling task ...
    assert len(rows) == LINES
    assert len(per_line) == LINES
    assert set(per_line.values()) == {1}
    # ... and no external id was ever sent in a second create (nothing paid twice, no 1303).
    assert stats["creates"]["external_ids_sent_more_than_once"] == 0
    assert stats["chaos"].get("created", 0) > 0
    # Every task reached a final status in the ledger, matching Kling's own.
    by_id = {t["external_task_id"]: t for t in truth}
    for external_id, status, task_id, _ in rows:
        assert status in ("succeed", "failed"), (external_id, status)
        assert task_id == by_id[external_id]["task_id"]
        assert status == by_id[external_id]["status"]
    assert elapsed < 90
