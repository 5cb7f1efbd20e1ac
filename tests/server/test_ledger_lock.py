"""Issue 15, point 1: another process holding the ledger's write lock does not freeze the server.

Before the async ledger boundary, every ledger call ran on the event loop: another process
holding SQLite's write lock for 2 s (the busy timeout is 30 s) froze a coroutine heartbeat for
2.05 s, and on PostgreSQL a ``FOR UPDATE`` wait froze callbacks, dashboard and poller at once.
Here a real second process holds the lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the task's
row ``FOR UPDATE``) while ``/healthz`` and a callback are sent to the app on a real uvicorn
socket. Both answer at once; the callback's write lands as soon as the lock is released.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import time

import httpx
import pytest
from serverkit import CALLBACK_TOKEN, ThreadedServer, add_task, legacy_body
from sqlalchemy.engine import make_url

from klingwatch.clock import RealClock
from klingwatch.store import Ledger, LocalStatus

pytestmark = pytest.mark.slow

#: How long the other process holds the lock.
HOLD = 2.0


def _hold_lock(ledger_url: str, local_id: int) -> subprocess.Popen[str]:
    """A process that takes the write lock, says ``locked``, holds it ``HOLD`` s, lets go."""
    url = make_url(ledger_url)
    if url.get_backend_name() == "sqlite":
        code = f"""
            import sqlite3, time
            conn = sqlite3.connect({url.database!r}, isolation_level=None, timeout=30)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE tasks SET polls = polls WHERE id = {local_id}")
            print("locked", flush=True)
            time.sleep({HOLD})
            conn.execute("COMMIT")
        """
    else:
        options = url.query.get("options")
        dsn = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
        code = f"""
            import time, psycopg
            with psycopg.connect({dsn!r}, options={options!r}) as conn:
                conn.execute("SELECT id FROM tasks WHERE id = {local_id} FOR UPDATE")
                print("locked", flush=True)
                time.sleep({HOLD})
        """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_healthz_and_callbacks_answer_while_another_process_holds_the_write_lock(
    ledger_url: str,
) -> None:
    with Ledger.open(ledger_url, clock=RealClock()) as ledger:
        local_id = add_task(ledger, 1)
        with ThreadedServer(ledger) as base, httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/healthz").status_code == 200  # warm: connections, threads
            holder = _hold_lock(ledger_url, local_id)
            try:
                health = []
                for _ in range(5):
                    started = time.perf_counter()
                    answer = http.get("/healthz")
                    health.append(time.perf_counter() - started)
                    assert answer.status_code == 200
                    assert answer.json()["status"] == "ok"
                started = time.perf_counter()
                delivered = http.post(
                    f"/callbacks/kling/{CALLBACK_TOKEN}",
                    json=legacy_body(1, "processing"),
                    headers={"Host": "localhost"},
                )
                callback = time.perf_counter() - started
                still_locked = holder.poll() is None
            finally:
                holder.wait(timeout=30)
                if holder.stdout is not None:
                    holder.stdout.close()
            assert still_locked  # every answer above came while the lock was held
            # "Within 100 ms" while a 2 s lock is held: the median, so that one scheduling
            # hiccup of a shared machine is not taken for a blocked loop; none near the 2 s.
            assert statistics.median(health) < 0.1, health
            assert max(health) < HOLD / 2, health
            assert callback < 0.1 + 0.05, callback  # ACK_WITHIN, then the answer
            assert delivered.status_code == 200
            assert delivered.json()["outcome"] == "recording"
            # The write was only waiting for the lock: it lands once the lock is let go.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                record = ledger.task(local_id)
                assert record is not None
                if record.status is LocalStatus.PROCESSING:
                    break
                time.sleep(0.05)
            assert record.status is LocalStatus.PROCESSING
            assert http.get("/healthz").status_code == 200
