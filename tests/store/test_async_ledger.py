"""The ledger's async boundary: awaited calls, writes in order on one thread, reads never behind
a write that waits for another process's lock, and the event loop free meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from klingwatch.clock import ManualClock
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source
from klingwatch.store.async_ledger import AsyncLedger


def _tasks(n: int) -> list[NewTask]:
    return [NewTask("text2video", {"prompt": f"p{i}"}, f"t{i}") for i in range(n)]


async def test_calls_are_awaited_and_see_each_other(ledger_url: str) -> None:
    async with await AsyncLedger.open(ledger_url, clock=ManualClock()) as ledger:
        added = await ledger.add_tasks("b", _tasks(3))
        obs = Observation(LocalStatus.SUBMITTED, Source.CREATE, 1.0, local_id=added.added[0])
        [change] = await ledger.apply_many([obs])
        assert change.state is not None
        assert change.state.status is LocalStatus.SUBMITTED
        assert (await ledger.counts(batch="b"))[LocalStatus.SUBMITTED] == 1
        names = await ledger.read(lambda sync: [t.external_task_id for t in sync.tasks()])
        assert names == ["t0", "t1", "t2"]


async def test_writes_run_in_the_order_they_were_awaited_on_one_thread(tmp_path: Path) -> None:
    async with await AsyncLedger.open(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        threads: list[str] = []

        def note(sync: Ledger, i: int) -> int:
            threads.append(threading.current_thread().name)
            sync.set_meta("last", str(i))
            return i

        done = await asyncio.gather(*(ledger.write(note, i) for i in range(20)))
        assert done == list(range(20))
        assert await ledger.get_meta("last") == "19"
        assert len(set(threads)) == 1
        assert threads[0].startswith("ledger-write")


async def test_a_read_and_the_loop_go_on_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.db"
    async with await AsyncLedger.open(f"sqlite:///{path}") as ledger:
        await ledger.add_tasks("b", _tasks(1))
        other = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # the write lock, held as another process would
        write = asyncio.ensure_future(ledger.set_meta("k", "v"))  # waits for the lock
        started = time.perf_counter()
        ticks = 0
        while time.perf_counter() - started < 0.5:  # the loop keeps running meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        reading = time.perf_counter()
        counts = await ledger.counts()  # a read: not behind the waiting write
        read_took = time.perf_counter() - reading
        assert counts[LocalStatus.QUEUED] == 1
        assert not write.done()
        other.execute("COMMIT")
        await write
        other.close()
        assert await ledger.get_meta("k") == "v"
    assert ticks >= 20
    assert read_took < 0.25


async def test_an_in_memory_ledger_runs_everything_on_one_thread() -> None:
    async with await AsyncLedger.open("sqlite://") as ledger:
        seen: set[str] = set()

        def where(sync: Ledger) -> None:
            seen.add(threading.current_thread().name)

        await asyncio.gather(ledger.read(where), ledger.write(where), ledger.read(where))
        await ledger.add_tasks("b", _tasks(2))
        assert len(await ledger.tasks()) == 2
    assert len(seen) == 1


async def test_a_borrowed_ledger_stays_open_an_owned_one_is_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger.open(url) as sync:
        async with AsyncLedger(sync) as borrowed:
            await borrowed.add_tasks("b", _tasks(1))
        assert len(sync.tasks()) == 1  # still open after the facade closed
