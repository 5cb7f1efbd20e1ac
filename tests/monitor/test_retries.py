"""Retries: new tasks with new external ids, linked to the tasks they retry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from submit_world import intents

from klingwatch.clock import ManualClock
from klingwatch.monitor.retries import retry_task
from klingwatch.store import Ledger, LocalStatus


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = Ledger.open(ledger_url, clock=ManualClock())
    led.ensure_batch("b1")
    yield led
    led.close()


def test_a_retry_is_a_new_task_with_a_new_id_linked_to_the_old_one(ledger: Ledger) -> None:
    [first] = ledger.add_tasks("b1", intents(1)).added
    original = ledger.task(first)
    assert original is not None
    r1 = retry_task(ledger, original)
    r2 = retry_task(ledger, r1)
    assert (r1.external_task_id, r2.external_task_id) == ("line-0-r1", "line-0-r2")
    assert (r1.retry_of, r2.retry_of) == (first, r1.local_id)
    assert r1.status is LocalStatus.QUEUED
    assert r1.request == original.request
    assert r1.batch == "b1"
    again = retry_task(ledger, original)
    assert again.external_task_id == "line-0-r3"
