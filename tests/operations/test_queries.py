"""The read operations every face shares (operations/queries.py), on a real SQLite ledger."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from klingwatch.clock import ManualClock
from klingwatch.kling.errors import ConfigurationError
from klingwatch.operations import Operations, TaskQuery
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.errors import UnknownTask


@contextlib.asynccontextmanager
async def ledger_ops(tmp_path: Path) -> AsyncIterator[tuple[Operations, Ledger]]:
    """Operations without a Kling client (nothing can be polled) on a fresh ledger file."""
    clock = ManualClock()
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(db, clock=clock)
    aledger = AsyncLedger(ledger)
    try:
        yield Operations(settings=Settings.load(db=db), ledger=aledger, clock=clock), ledger
    finally:
        await aledger.aclose()
        ledger.close()


def _add(ledger: Ledger, batch: str, prompts: list[str], product: str = "text2video") -> None:
    ledger.add_tasks(
        batch,
        [
            NewTask(product=product, request={"prompt": p}, external_task_id=f"{batch}-{i}")
            for i, p in enumerate(prompts)
        ],
    )


async def test_pages_say_where_the_next_one_starts_and_the_last_says_none(tmp_path: Path) -> None:
    async with ledger_ops(tmp_path) as (ops, ledger):
        _add(ledger, "a", [f"fox {i}" for i in range(5)])
        first = await ops.list_tasks(TaskQuery(limit=2))
        assert [t.external_task_id for t in first.items] == ["a-4", "a-3"]
        assert (first.total, first.next_offset) == (5, 2)
        last = await ops.list_tasks(TaskQuery(limit=2, offset=4))
        assert [t.external_task_id for t in last.items] == ["a-0"]
        assert last.next_offset is None


async def test_tasks_are_sorted_by_the_column_asked_for(tmp_path: Path) -> None:
    async with ledger_ops(tmp_path) as (ops, ledger):
        _add(ledger, "zeta", ["one"])
        _add(ledger, "alpha", ["two"])
        _add(ledger, "mid", ["three"])
        page = await ops.list_tasks(TaskQuery(sort="batch", descending=False))
        assert [t.batch for t in page.items] == ["alpha", "mid", "zeta"]


async def test_text_filters_by_the_prompt_and_counts_only_matches(tmp_path: Path) -> None:
    async with ledger_ops(tmp_path) as (ops, ledger):
        _add(ledger, "a", ["a red fox", "a blue whale", "Fox at night"])
        page = await ops.list_tasks(TaskQuery(text="fox", limit=1))
        assert page.total == 2
        assert page.next_offset == 1


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("limit", 0, "limit must be between 1 and 1000"), ("offset", -1, "offset must be 0")],
)
def test_a_query_out_of_bounds_is_refused_in_one_line(field: str, value: int, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        TaskQuery(**{field: value})  # type: ignore[arg-type]


async def test_status_gives_every_batch_its_counts_and_eta(tmp_path: Path) -> None:
    async with ledger_ops(tmp_path) as (ops, ledger):
        _add(ledger, "a", ["one", "two"])
        _add(ledger, "b", ["three"])
        report = await ops.status()
        assert report.overall.total == 3
        figures = {b.name: b for b in report.batches}
        assert figures["a"].counts == {LocalStatus.QUEUED: 2}
        assert figures["b"].total == 1
        assert figures["b"].done == 0
        only_b = await ops.status("b")
        assert [b.name for b in only_b.batches] == ["b"]
        assert only_b.overall.total == 1


async def test_show_task_finds_a_task_by_any_name_with_its_timeline(tmp_path: Path) -> None:
    async with ledger_ops(tmp_path) as (ops, ledger):
        _add(ledger, "a", ["one"])
        by_name = await ops.show_task("a-0")
        by_id = await ops.show_task(str(by_name.task.local_id))
        assert by_id.task.external_task_id == "a-0"
        assert [e.to_status for e in by_name.events] == [LocalStatus.QUEUED]
        with pytest.raises(UnknownTask):
            await ops.show_task("no-such-task")


async def test_wait_for_returns_what_still_runs_at_the_deadline(tmp_path: Path) -> None:
    async with ledger_ops(tmp_path) as (ops, ledger):
        _add(ledger, "a", ["one", "two"])
        local = ledger.task("a-1")
        assert local is not None
        ledger.apply(
            Observation(
                local_id=local.local_id,
                status=LocalStatus.FAILED,
                source=Source.MANUAL,
                at=ops.clock.time(),
                status_msg="no",
            )
        )
        result = await ops.wait_for(["a-0", "a-1"], timeout=0.2, interval=0.05)
        assert not result.done
        assert [t.external_task_id for t in result.running] == ["a-0"]
        assert result.passes == 0  # no client: only the ledger was read
        finished = await ops.wait_for(["a-1"], timeout=5)
        assert finished.done
        assert finished.waited < 5


@pytest.mark.parametrize("seconds", [-1.0, 601.0])
async def test_wait_for_refuses_a_timeout_out_of_bounds(tmp_path: Path, seconds: float) -> None:
    async with ledger_ops(tmp_path) as (ops, ledger):
        _add(ledger, "a", ["one"])
        with pytest.raises(ConfigurationError, match="timeout must be between 0 and 600"):
            await ops.wait_for(["a-0"], timeout=seconds)
