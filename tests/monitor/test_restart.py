"""Restart safety: ``klingwatch watch`` killed with SIGKILL at any point carries on when started
again; nothing is lost or counted twice. A real process against a sandbox on a real socket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, TimingSpec, serve_in_thread
from klingwatch.store import Ledger

KEY = "restart-test-key"
SCALE = 0.02
# Pro tasks run 400-480 nominal seconds (8-10 s here): still in flight whenever the first
# process is killed, however slowly this machine starts it. Std tasks end within seconds.
CONFIG = SandboxConfig(
    api_keys=(KEY,),
    time_scale=SCALE,
    slots={Family.VIDEO: 500},
    straggler_rate=0.0,
    failure_rate=0.2,
    seed=11,
    durations={
        "text2video:kling-v2-6:pro": TimingSpec(queue_p50=2, queue_p95=4, run_p50=400, run_p95=480)
    },
)
CHANGE = re.compile(r"^\d\d:\d\d:\d\d  \S+ \((\d+)\)  (\w+) -> (\w+)")


def watch(env: dict[str, str], *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from klingwatch.cli import main; main()", "watch", *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def counts(db: str) -> tuple[int, int, int]:
    """(tasks that ended, tasks, polls made) in the ledger."""
    with Ledger.open(db) as ledger:
        tasks = ledger.tasks()
    return sum(t.status.is_final for t in tasks), len(tasks), sum(t.polls for t in tasks)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_watch_killed_mid_way_and_restarted_ends_every_task_true_without_duplicates(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with serve_in_thread(CONFIG) as url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KLING", "COLUMNS"))},
            "KLING_API_BASE": url,
            "KLING_API_KEY": KEY,
            "KLINGWATCH_TIME_SCALE": str(SCALE),
            "KLINGWATCH_DB": db,
        }
        auth = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=auth) as http, Ledger.open(db) as ledger:
            ledger.ensure_batch("b1")

            def create(i: int) -> None:
                mode = "pro" if i % 3 == 0 else "std"
                body = {"prompt": f"cat {i}", "model_name": "kling-v2-6", "mode": mode}
                task_id = http.post("/v1/videos/text2video", json=body).json()["data"]["task_id"]
                ledger.adopt("b1", "text2video", task_id)

            # The first engine is started before the work arrives (a slow start on a loaded
            # machine then cannot let everything finish before the kill).
            create(0)
            first = watch(env)
            wait_for(lambda: counts(db)[2] > 0, first, "the first engine polls")
            for i in range(1, 60):
                create(i)
            wait_for(lambda: counts(db)[0] >= 3, first, "some tasks ended")
        first.kill()
        out1, _ = first.communicate(timeout=10)
        assert first.returncode == -9
        done_at_kill, total, _ = counts(db)
        assert done_at_kill < total, "killed too late to test a restart"

        second = watch(env, "--until-done")
        out2, err2 = second.communicate(timeout=120)
        assert second.returncode == 0, err2

        truth = {t["task_id"]: t for t in httpx.get(f"{url}/sandbox/tasks").json()["tasks"]}

    with Ledger.open(db) as ledger:
        tasks = ledger.tasks()
        assert len(tasks) == 60
        for task in tasks:
            true = truth[task.task_id or ""]
            assert task.status.value == true["status"]
            assert (task.status_msg or "") == (true["task_status_msg"] or "")
            moves = [(e.from_status, e.to_status) for e in ledger.events(task.local_id)]
            status_moves = [m for m in moves if m[0] != m[1]]
            assert len(status_moves) == len(set(status_moves)), moves
            ranks = [to.rank for _, to in status_moves]
            assert ranks == sorted(ranks)
    printed = Counter(
        m.groups() for m in map(CHANGE.match, (out1 + out2).splitlines()) if m is not None
    )
    assert printed
    assert max(printed.values()) == 1
