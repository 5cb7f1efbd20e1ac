"""Outbound events survive SIGKILL: ``klingwatch submit --wait`` with KLINGWATCH_EVENTS_URL, killed
at random moments while it sends, watches and delivers, then run to the end. The receiver (a real
socket) must have every status change the ledger holds, each signed, and a duplicate (an event
delivered but not yet acknowledged when the process died) must carry the same ``webhook-id``."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from cli_process import console_script, sandbox_env
from standardwebhooks import Webhook

from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, TimingSpec, serve_in_thread
from receiver import receiver

pytestmark = pytest.mark.slow

LINES = 60
SCALE = 0.01
KILLS = 5
API_KEY = "events-crash-key"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        try:
            return list(conn.execute(sql))
        except sqlite3.OperationalError:  # not migrated yet
            return []


def test_sigkill_loses_no_outbound_event_and_duplicates_share_their_webhook_id(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261202)
    config = SandboxConfig(
        api_keys=(API_KEY,),
        slots={Family.VIDEO: 10},
        time_scale=SCALE,
        failure_rate=0.1,
        straggler_rate=0.0,
        seed=5,
        durations={"video": TimingSpec(queue_p50=2, queue_p95=5, run_p50=25, run_p95=45)},
    )
    batch_file = tmp_path / "events.txt"
    batch_file.write_text("".join(f"a lantern in the fog, take {i}\n" for i in range(LINES)))
    db = tmp_path / "ledger.db"
    # A slow receiver: a kill often lands while deliveries are on the wire.
    with receiver(delay=0.05) as inbox, serve_in_thread(config) as url:
        env = sandbox_env(
            url,
            db,
            api_key=API_KEY,
            scale=SCALE,
            KLINGWATCH_EVENTS_URL=f"{inbox.base}/events",
            KLINGWATCH_EVENTS_SECRET=SECRET,
        )
        command = [*console_script(), "submit", str(batch_file), "--wait"]
        for _ in range(KILLS):
            proc = subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            seen = len(inbox.got())
            deadline = time.monotonic() + 30
            while len(inbox.got()) == seen and proc.poll() is None:
                assert time.monotonic() < deadline, "no event arrived"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.8))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stderr:
                proc.stderr.close()
        final = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert final.returncode == 0, final.stderr
        received = inbox.got("/events")

    changes = _query(
        db,
        "SELECT id, from_status, to_status FROM events "
        "WHERE local_id IS NOT NULL AND from_status IS NOT NULL AND from_status != to_status",
    )
    assert _query(db, "SELECT count(*) FROM outbox") == [(0,)]
    assert _query(db, "SELECT count(*) FROM tasks WHERE status NOT IN ('succeed', 'failed')") == [
        (0,)
    ]
    hook = Webhook(SECRET)
    by_webhook_id: dict[str, list[dict[str, object]]] = defaultdict(list)
    for request in received:
        by_webhook_id[request.headers["webhook-id"]].append(
            hook.verify(request.body, request.headers)
        )
    # Every status change the ledger holds reached the receiver ...
    got = {(e["id"], e["from"], e["to"]) for events in by_webhook_id.values() for e in events}
    assert got == set(changes)
    # ... and a delivery repeated after a kill is the same event under the same webhook-id.
    for events in by_webhook_id.values():
        assert len({json.dumps(e["id"]) for e in events}) == 1
    duplicates = sum(len(events) - 1 for events in by_webhook_id.values())
    print(
        f"\nevents crash test: {KILLS} kills, {len(changes)} status changes, "
        f"{len(received)} deliveries ({duplicates} repeated after a kill)"
    )
