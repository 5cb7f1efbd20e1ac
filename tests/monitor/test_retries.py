"""Retries: new tasks with new external ids, linked to the tasks they retry, under one rule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from submit_world import intents

from klingwatch.clock import ManualClock
from klingwatch.monitor.retries import RetryRefused, check_retry, retry_task
from klingwatch.store import Ledger, LocalStatus, Observation, Source, TaskRecord


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = Ledger.open(ledger_url, clock=ManualClock())
    led.ensure_batch("b1")
    yield led
    led.close()


def ended(ledger: Ledger, local_id: int, status: LocalStatus) -> TaskRecord:
    """Task ``local_id`` as Kling ended it."""
    ledger.apply(
        Observation(
            status=status,
            source=Source.GET,
            at=ledger.clock.time(),
            local_id=local_id,
            task_id=f"k{local_id}",
            status_msg=None if status is LocalStatus.SUCCEED else "internal error",
        )
    )
    task = ledger.task(local_id)
    assert task is not None
    return task


def test_a_retry_is_a_new_task_with_a_new_id_linked_to_the_old_one(ledger: Ledger) -> None:
    [first] = ledger.add_tasks("b1", intents(1)).added
    original = ended(ledger, first, LocalStatus.FAILED)
    r1 = retry_task(ledger, original)
    r2 = retry_task(ledger, ended(ledger, r1.local_id, LocalStatus.FAILED))
    assert (r1.external_task_id, r2.external_task_id) == ("line-0-r1", "line-0-r2")
    assert (r1.retry_of, r2.retry_of) == (first, r1.local_id)
    assert r1.status is LocalStatus.QUEUED
    assert r1.request == original.request
    assert r1.batch == "b1"
    again = retry_task(ledger, original)
    assert again.external_task_id == "line-0-r3"


def test_a_task_in_flight_is_never_retried(ledger: Ledger) -> None:
    [first] = ledger.add_tasks("b1", intents(1)).added
    queued = ledger.task(first)
    assert queued is not None
    with pytest.raises(RetryRefused, match="'line-0' is queued; only a finished task"):
        retry_task(ledger, queued, force=True)
    assert len(ledger.tasks()) == 1


def test_a_succeeded_task_is_retried_only_when_forced(ledger: Ledger) -> None:
    [first] = ledger.add_tasks("b1", intents(1)).added
    done = ended(ledger, first, LocalStatus.SUCCEED)
    with pytest.raises(RetryRefused, match="Kling bills again; add --force to retry it anyway"):
        retry_task(ledger, done)
    with pytest.raises(RetryRefused, match='add "force": true to retry'):
        check_retry(done, how_to_force='"force": true')
    assert len(ledger.tasks()) == 1  # nothing was queued by the refusals
    forced = retry_task(ledger, done, force=True)
    assert (forced.status, forced.retry_of) == (LocalStatus.QUEUED, first)


@pytest.mark.parametrize("status", [LocalStatus.FAILED, LocalStatus.REJECTED])
def test_failures_need_no_force(ledger: Ledger, status: LocalStatus) -> None:
    [first] = ledger.add_tasks("b1", intents(1)).added
    check_retry(ended(ledger, first, status))
