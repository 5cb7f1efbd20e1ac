"""Issue 16, part 4: ``klingwatch submit --wait --max-units N`` killed with SIGKILL at random
moments and restarted, against a sandbox on a real socket whose creates sometimes answer 500
although the task was created. The sum of the estimates of every task Kling created never passes
the cap, on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_process import CLI, sandbox_env
from sqlalchemy import create_engine, text

from klingwatch.kling.products import Family
from klingwatch.monitor.estimate import estimate_units
from klingwatch.sandbox import ChaosConfig, SandboxConfig, TimingSpec, serve_in_thread

pytestmark = pytest.mark.slow

LINES = 60
CAP = 25  # units; a std 5 s text2video line is estimated at 1 unit
SLOTS = 6
SCALE = 0.01
KILLS = 5
API_KEY = "cap-crash-key"


def _rows(url: str) -> list[Any]:
    """(status, send attempts, estimate, hold reason) of every ledger row, read directly."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT status, send_attempts, units_estimated, hold_reason FROM tasks")
                )
            )
    except Exception:  # not created or not migrated yet
        return []
    finally:
        engine.dispose()


def _wait_until_sending(url: str, proc: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if any(row.send_attempts for row in _rows(url)):
            return
        time.sleep(0.05)


def test_sigkill_at_any_moment_never_lets_a_batch_pass_its_cap(
    ledger_url: str, tmp_path: Path
) -> None:
    rng = random.Random(20261202)
    config = SandboxConfig(
        api_keys=(API_KEY,),
        slots={Family.VIDEO: SLOTS},
        time_scale=SCALE,
        failure_rate=0.0,
        straggler_rate=0.0,
        seed=5,
        durations={"video": TimingSpec(queue_p50=2, queue_p95=5, run_p50=25, run_p95=45)},
        chaos=ChaosConfig(created_then_5000=0.2, latency_ms=30, jitter_ms=60),
    )
    batch_file = tmp_path / "capped.txt"
    batch_file.write_text("".join(f"a lantern on a lake, take {i}\n" for i in range(LINES)))
    per_line = estimate_units("text2video", {"prompt": "x"})
    assert per_line == 1
    with serve_in_thread(config) as url:
        env = sandbox_env(
            url, Path("unused"), api_key=API_KEY, scale=SCALE, KLINGWATCH_SLOTS_VIDEO=str(SLOTS)
        )
        env.update(KLINGWATCH_DB=ledger_url, COLUMNS="200")
        command = [
            *CLI,
            "submit",
            str(batch_file),
            "--batch",
            "capped",
            "--wait",
            "--max-units",
            str(CAP),
        ]
        for _ in range(KILLS):
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _wait_until_sending(ledger_url, proc)
            time.sleep(rng.uniform(0.0, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
            # At every kill: what the ledger counts as sent is within the cap.
            sent = [r for r in _rows(ledger_url) if r.send_attempts and r.status != "rejected"]
            assert sum(Decimal(r.units_estimated) for r in sent) <= CAP
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        with httpx.Client(base_url=url) as http:
            truth: list[dict[str, Any]] = http.get("/sandbox/tasks").json()["tasks"]
            stats = http.get("/sandbox/stats").json()

    # What Kling created (its own truth) costs at most the cap, and it reached the cap.
    assert len(truth) * per_line <= CAP
    assert len(truth) == CAP
    assert stats["creates"]["external_ids_sent_more_than_once"] == 0
    rows = _rows(ledger_url)
    assert sum(1 for r in rows if r.status == "succeed") == CAP
    held = [r for r in rows if r.status == "queued"]
    assert len(held) == LINES - CAP
    assert {r.hold_reason for r in held} == {f"held: budget cap {CAP} units, {CAP} sent"}
    assert f"{LINES - CAP} tasks held: budget cap {CAP} units" in final.stdout
