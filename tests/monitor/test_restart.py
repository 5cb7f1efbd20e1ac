"""Restart safety: ``klingwatch watch`` killed with SIGKILL at any point carries on when started
again; nothing is lost or counted twice. A real process against a sandbox on a real socket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, serve_in_thread
from klingwatch.store import Ledger

KEY = "restart-test-key"
SCALE = 0.05
CONFIG = SandboxConfig(
    api_keys=(KEY,),
    time_scale=SCALE,
    slots={Family.VIDEO: 500},
    straggler_rate=0.0,
    failure_rate=0.2,
    seed=11,
)
CHANGE = re.compile(r"^\d\d:\d\d:\d\d  \S+ \((\d+)\)  (\w+) -> (\w+)")


def watch(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from klingwatch.cli import main; main()", "watch", "--until-done"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(db: str) -> tuple[int, int]:
    with Ledger.open(db) as ledger:
        counts = ledger.counts()
    final = sum(n for status, n in counts.items() if status.is_final)
    return final, sum(counts.values())


@pytest.mark.slow
def test_watch_killed_mid_way_and_restarted_ends_every_task_true_without_duplicates(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    with serve_in_thread(CONFIG) as url:
        auth = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(base_url=url, headers=auth) as http, Ledger.open(db) as ledger:
            ledger.ensure_batch("b1")
            for i in range(60):
                body = {"prompt": f"cat {i}", "model_name": "kling-v2-6"}
                task_id = http.post("/v1/videos/text2video", json=body).json()["data"]["task_id"]
                ledger.adopt("b1", "text2video", task_id)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KLING", "COLUMNS"))},
            "KLING_API_BASE": url,
            "KLING_API_KEY": KEY,
            "KLINGWATCH_TIME_SCALE": str(SCALE),
            "KLINGWATCH_DB": db,
        }

        first = watch(env)
        deadline = time.monotonic() + 60
        while finished(db)[0] < 3:  # part of the work done, most of it still in flight
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the engine made no progress"
            time.sleep(0.05)
        first.kill()
        out1, _ = first.communicate(timeout=10)
        assert first.returncode == -9
        done_at_kill, total = finished(db)
        assert done_at_kill < total, "killed too late to test a restart"

        second = watch(env)
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
