from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from engine_world import CONFIG, World, per_task_polls, refuse_tasks_api, world

from klingwatch.sandbox import TimingSpec
from klingwatch.store import Change, LocalStatus


def reads_since(w: World, before: Counter[tuple[str, str]]) -> Counter[str]:
    """Requests the client sent since ``before``, by "METHOD route"."""
    now = w.client.stats.by_route - before
    return Counter({f"{m} {r}": n for (m, r), n in now.items()})


async def assert_matches_truth(w: World) -> None:
    truth = await w.truth()
    tasks = w.ledger.tasks()
    assert tasks
    for task in tasks:
        true = truth[task.external_task_id]
        assert task.status.value == true["status"], task.external_task_id
        assert task.status.is_final
        assert (task.status_msg or "") == (true["task_status_msg"] or "")
        assert task.kling_updated_ms == true["finished_at"]


async def test_with_an_api_key_hundreds_of_tasks_end_true_with_a_tenth_of_per_task_polling(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await w.submit(300)
        before = Counter(w.client.stats.by_route)
        monitor = w.monitor(until_done=True)
        await monitor.run()
        await assert_matches_truth(w)
        reads = reads_since(w, before)
        assert set(reads) <= {"POST /tasks", "GET /tasks"}
        assert reads["POST /tasks"] > 0
        assert sum(reads.values()) * 10 <= per_task_polls(await w.truth())
        # submitted -> processing -> final, each seen at most once (a task may finish between
        # two sweeps, its processing never seen)
        assert 300 < monitor.changes <= 600


async def test_with_ak_sk_the_engine_reads_legacy_list_pages(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False) as w:
        await w.submit(200)
        before = Counter(w.client.stats.by_route)
        await w.monitor(until_done=True).run()
        await assert_matches_truth(w)
        reads = reads_since(w, before)
        assert reads["GET /v1/videos/text2video"] > 0
        assert not any("/tasks" in route for route in reads)
        assert sum(reads.values()) * 5 <= per_task_polls(await w.truth())


@pytest.mark.parametrize(("status", "code"), [(404, 1202), (401, 1002)])
async def test_a_server_refusing_the_tasks_style_is_read_the_legacy_way(
    tmp_path: Path, status: int, code: int
) -> None:
    async with world(tmp_path, script=refuse_tasks_api(status, code)) as w:
        await w.submit(60)
        monitor = w.monitor(until_done=True)
        await monitor.run()
        await assert_matches_truth(w)
        assert not w.client.tasks_api
        routes = w.client.stats.by_route
        assert routes[("POST", "/tasks")] + routes[("GET", "/tasks")] == 1  # asked once only
        assert routes[("GET", "/v1/videos/text2video")] > 0


async def test_a_straggler_is_flagged_stuck_kept_watched_and_cleared_when_it_ends(
    tmp_path: Path,
) -> None:
    # Pro tasks on this account run half an hour: far past the cold-start p99 for their kind.
    slow = CONFIG.model_copy(
        update={
            "failure_rate": 0.0,
            "durations": {
                "text2video:kling-v2-6:pro": TimingSpec(
                    queue_p50=5, queue_p95=6, run_p50=1800, run_p95=1900
                )
            },
        }
    )
    pro = {"prompt": "a slow cat", "model_name": "kling-v2-6", "mode": "pro"}
    async with world(tmp_path, config=slow) as w:
        [local_id] = await w.submit(1, request=pro)
        monitor = w.monitor()
        flagged_while = set()
        while not w.ledger.task(local_id).status.is_final:  # type: ignore[union-attr]
            await monitor.run_once()
            await w.clock.sleep(15)
            task = w.ledger.task(local_id)
            assert task is not None
            if task.stuck:
                flagged_while.add(task.status)
        task = w.ledger.task(local_id)
        assert task is not None
        assert flagged_while == {LocalStatus.PROCESSING}
        assert task.status is LocalStatus.SUCCEED
        assert not task.stuck
        notes = [e.detail or "" for e in w.ledger.events(local_id) if e.source.value == "monitor"]
        # The final status clears the flag (the door does it, with the final status's event).
        assert len(notes) == 1
        assert notes[0].startswith("stuck: processing for")


async def test_on_change_hears_every_status_change_once(tmp_path: Path) -> None:
    heard: list[Change] = []

    async def hook(changes: list[Change]) -> None:
        heard.extend(c for c in changes if c.status_changed)

    async with world(tmp_path) as w:
        await w.submit(40)
        monitor = w.monitor(until_done=True, on_change=hook)
        await monitor.run()
        moves = Counter((c.local_id, c.old, c.new) for c in heard)
        assert max(moves.values()) == 1
        finals = {c.local_id for c in heard if c.new.is_final}
        assert len(finals) == 40
        assert f"changes={len(heard)}" in repr(monitor)


async def test_run_once_does_nothing_when_nothing_is_due(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        monitor = w.monitor()
        assert await monitor.run_once() == []
        assert monitor.requests == 0
        assert await monitor.done()


async def test_sigterm_finishes_the_sweep_and_stops_cleanly(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(20)
        monitor = w.monitor(handle_signals=True)
        swept = asyncio.Event()
        monitor.on_sweep = lambda report: swept.set()
        runner = asyncio.create_task(monitor.run())
        await swept.wait()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(runner, timeout=30)
        assert monitor.stopping
        assert monitor.iterations >= 1
        # The ledger is whole: every task still active is scheduled for its next look.
        for task in w.ledger.tasks():
            assert task.next_look_at is not None


async def test_a_batch_filter_watches_only_that_batch(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(10, batch="mine", prefix="m")
        await w.submit(10, batch="other", prefix="o")
        await w.monitor(batch="mine", until_done=True).run()
        assert all(t.status.is_final for t in w.ledger.tasks(batch="mine"))
        assert all(t.polls == 0 for t in w.ledger.tasks(batch="other"))


class CountingWorker:
    """A worker that has work for its first ``rounds`` runs (as a submitter would)."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.runs = 0

    async def run_once(self) -> list[Change]:
        self.runs += 1
        return []

    def busy(self) -> bool:
        return self.runs < self.rounds


async def test_workers_run_after_every_sweep_and_keep_until_done_waiting(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        worker = CountingWorker(rounds=7)
        monitor = w.monitor(until_done=True, workers=[worker])
        await monitor.run()
        assert worker.runs == 7
        assert monitor.iterations == 7


async def test_queued_tasks_keep_the_engine_waiting_only_when_a_submitter_sends_them(
    tmp_path: Path,
) -> None:
    from klingwatch.store import NewTask

    async with world(tmp_path) as w:
        w.ledger.ensure_batch("b1")
        w.ledger.add_tasks("b1", [NewTask("text2video", {"prompt": "x"}, "q1")])
        alone = w.monitor(until_done=True)
        await alone.run()
        assert alone.iterations == 1
        assert await w.monitor(submitter=CountingWorker(rounds=0)).done() is False


async def test_a_wake_cuts_the_engines_pause_short(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.clock.auto_advance = False  # the pause would last until the clock is moved
        monitor = w.monitor()
        pause = asyncio.ensure_future(monitor._sleep(600.0))
        await asyncio.sleep(0)
        assert not pause.done()
        monitor.wake()  # a callback freed a slot
        await asyncio.wait_for(pause, timeout=5)
        w.clock.auto_advance = True
