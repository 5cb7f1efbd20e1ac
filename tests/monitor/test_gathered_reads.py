"""Single reads gathered into batched requests, counted by the sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from engine_world import world

from klingwatch.kling.errors import TaskNotFound
from klingwatch.monitor.gathered_reads import GatheredReads


@pytest.mark.parametrize(("api_key", "requests"), [(True, 3), (False, 1)], ids=["ids", "page"])
async def test_a_burst_of_single_reads_costs_a_few_batched_requests(
    tmp_path: Path, api_key: bool, requests: int
) -> None:
    async with world(tmp_path, api_key=api_key) as w:
        await w.submit(45)
        ids = [t.task_id or "" for t in w.ledger.tasks()]
        reads = GatheredReads(w.client, w.clock, gather=0.5)
        before = w.served()
        tasks = await asyncio.gather(*(reads.get("text2video", i) for i in ids))
        assert [t.id for t in tasks] == ids
        # 45 reads: 3 x GET /tasks?task_ids= (20 each), or the first legacy list page.
        assert w.served() - before == reads.requests == requests


async def test_reads_arriving_during_a_flush_gather_for_the_next(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(4)
        ids = [t.task_id or "" for t in w.ledger.tasks()]
        reads = GatheredReads(w.client, w.clock, gather=0.5)
        first = asyncio.gather(*(reads.get("text2video", i) for i in ids[:2]))
        await asyncio.sleep(0)
        await w.clock.sleep(1.0)  # the first flush has gone out
        second = asyncio.gather(*(reads.get("text2video", i) for i in ids[2:]))
        assert [t.id for t in await first] + [t.id for t in await second] == ids
        assert reads.requests == 2


async def test_an_id_kling_does_not_know_is_not_found_for_its_caller_only(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await w.submit(2)
        known = w.ledger.tasks()[0].task_id or ""
        reads = GatheredReads(w.client, w.clock)
        found, missing = await asyncio.gather(
            reads.get("text2video", known),
            reads.get("text2video", "866889456698785798"),
            return_exceptions=True,
        )
        assert getattr(found, "id", None) == known
        assert isinstance(missing, TaskNotFound)
