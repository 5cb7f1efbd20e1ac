from __future__ import annotations

from pathlib import Path

from engine_world import world

from klingwatch.store import LocalStatus


async def test_engine_follows_hundreds_of_tasks_to_their_true_end_with_few_requests(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await w.submit(300)
        before = w.served()
        monitor = w.monitor(until_done=True)
        await monitor.run()
        truth = await w.truth()
        tasks = w.ledger.tasks()
        assert len(tasks) == 300
        for task in tasks:
            assert task.status.value == truth[task.external_task_id]["status"]
            assert task.status.is_final
        reads = w.served() - before
        print(repr(monitor), reads, w.clock.monotonic())
        assert reads < 300
