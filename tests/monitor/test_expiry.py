"""Which uncollected results are close to Kling's 30-day deletion (a real SQLite ledger)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from klingwatch.clock import ManualClock
from klingwatch.monitor.expiry import collection, expires_at, expiring, format_when
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

DAY = 86_400.0
VIDEO = {"videos": [{"id": "v", "url": "https://cdn.example/v.mp4"}]}
TWO_IMAGES = {
    "images": [{"index": 0, "url": "https://cdn/0.png"}, {"index": 1, "url": "https://cdn/1.png"}]
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(tmp_path: Path, clock: ManualClock) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock) as opened:
        yield opened


def finished(
    ledger: Ledger,
    clock: ManualClock,
    ext: str,
    *,
    days_ago: float,
    status: LocalStatus = LocalStatus.SUCCEED,
    result: dict[str, object] | None = None,
    batch: str = "b",
) -> int:
    [local_id] = ledger.add_tasks(
        batch, [NewTask(product="text2video", request={}, external_task_id=ext)]
    ).added
    ledger.apply(
        Observation(
            status=status,
            source=Source.GET,
            at=clock.time(),
            local_id=local_id,
            kling_updated_ms=round((clock.time() - days_ago * DAY) * 1000),
            result=VIDEO if result is None else result,
        )
    )
    return local_id


def complete(ledger: Ledger, local_id: int, index: int, size: int = 10) -> None:
    ledger.record_download(
        local_id,
        index,
        url="u",
        path=f"/f{local_id}_{index}",
        size=size,
        sha256="x",
        state="complete",
        error=None,
        at=0,
    )


def test_uncollected_tasks_within_the_warning_window_are_listed_soonest_first(
    ledger: Ledger, clock: ManualClock
) -> None:
    finished(ledger, clock, "fresh", days_ago=1)
    finished(ledger, clock, "soon", days_ago=26)
    finished(ledger, clock, "sooner", days_ago=29)
    finished(ledger, clock, "gone", days_ago=31)
    finished(ledger, clock, "failed", days_ago=29, status=LocalStatus.FAILED, result={})
    collected = finished(ledger, clock, "collected", days_ago=29)
    complete(ledger, collected, 0)
    now = clock.time()
    assert [t.external_task_id for t in expiring(ledger, now, 5)] == ["sooner", "soon"]
    assert [t.external_task_id for t in expiring(ledger, now, 2)] == ["sooner"]
    assert expiring(ledger, now, 0) == []


def test_a_task_is_collected_only_when_every_file_is_complete(
    ledger: Ledger, clock: ManualClock
) -> None:
    images = finished(ledger, clock, "images", days_ago=28, result=TWO_IMAGES)
    complete(ledger, images, 0)
    assert [t.local_id for t in expiring(ledger, clock.time())] == [images]
    # A watermarked variant does not stand in for the file itself.
    complete(ledger, images, 1001)
    assert [t.local_id for t in expiring(ledger, clock.time())] == [images]
    complete(ledger, images, 1)
    assert expiring(ledger, clock.time()) == []


def test_collection_sums_up_files_states_bytes_and_losses(
    ledger: Ledger, clock: ManualClock
) -> None:
    a = finished(ledger, clock, "a", days_ago=1, result=TWO_IMAGES)
    complete(ledger, a, 0, size=100)
    ledger.record_download(
        a, 1, url="u", path=None, size=None, sha256=None, state="failed", error="x", at=0
    )
    b = finished(ledger, clock, "b", days_ago=40)
    ledger.record_download(
        b, 0, url="u", path=None, size=None, sha256=None, state="expired", error="x", at=0
    )
    finished(ledger, clock, "c", days_ago=27, batch="other")
    summary = collection(ledger, clock.time(), 5)
    assert (summary.tasks, summary.collected, summary.files) == (3, 0, 4)
    assert (summary.files_complete, summary.files_failed, summary.files_expired) == (1, 1, 1)
    assert summary.files_pending == 1
    assert summary.bytes_complete == 100
    assert summary.lost == 1
    assert [t.external_task_id for t in summary.expiring] == ["c"]
    assert collection(ledger, clock.time(), 5, batch="b").expiring == []


def test_expiry_is_kling_updated_time_plus_30_days(ledger: Ledger, clock: ManualClock) -> None:
    local_id = finished(ledger, clock, "a", days_ago=10)
    task = ledger.task(local_id)
    assert task is not None
    assert expires_at(task) == pytest.approx(clock.time() + 20 * DAY)
    assert format_when(clock.time()) == "2026-01-01 00:00 UTC"
