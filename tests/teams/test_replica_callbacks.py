"""Issue 17: two ``klingwatch serve`` replicas on one PostgreSQL ledger, each with its own public
URL: Kling calls back whichever replica sent the task, and either one's callbacks land in the
one ledger through its door (one callback token for both, though they start together)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from replica_kit import Replicas, batch_file, check_ground_truth, sandbox_process, truth, wait_for

from klingwatch.operations.core import CALLBACK_TOKEN_META
from klingwatch.store import Ledger, Source

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LINES = 40
SLOTS = 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_callbacks_reach_either_replica_and_land_in_the_one_ledger(
    tmp_path: Path, postgres_url: str
) -> None:
    folder = tmp_path / "downloads"
    with sandbox_process(tmp_path / "sandbox.log", slots=SLOTS, seed=5) as sandbox:
        replicas = Replicas(
            tmp_path, sandbox, postgres_url, common={"KLINGWATCH_SLOTS_VIDEO": str(SLOTS)}
        )
        urls = {}
        try:
            for name in ("a", "b"):
                port = _free_port()
                urls[name] = f"http://127.0.0.1:{port}"
                replicas.start(name, "serve", "--port", str(port), "--public-url", urls[name])
            for url in urls.values():
                wait_for(lambda url=url: _healthy(url), timeout=30, what=f"{url}/healthz")
            replicas.run("submit", str(batch_file(tmp_path, LINES)), "--download", str(folder))
            wait_for(lambda: replicas.done(LINES, folder), timeout=50, what="the batch")
        finally:
            replicas.stop_all()
        check_ground_truth(replicas, LINES, folder, slots=SLOTS)
        made, _, _ = truth(sandbox)
        with httpx.Client(base_url=sandbox) as http:
            log = http.get("/sandbox/callbacks").json()["log"]

    with Ledger.open(postgres_url) as ledger:
        token = ledger.get_meta(CALLBACK_TOKEN_META)
        by_callback = sum(
            1
            for task in ledger.tasks()
            if any(e.source is Source.CALLBACK for e in ledger.events(task.local_id))
        )
    # Both replicas sent creates, each with its own URL and the one token (the few that
    # `submit`'s own first pass sent carry none: it has no public URL).
    sent_to = {t["callback_url"] for t in made} - {None}
    assert sent_to == {f"{urls[n]}/callbacks/kling/{token}" for n in ("a", "b")}
    # Both answered callbacks (2xx), and what they heard moved tasks in the one ledger.
    answered = {d["url"] for d in log if d["outcome"].startswith("http 2")}
    assert answered == sent_to
    assert by_callback > 0
