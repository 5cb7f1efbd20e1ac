"""Budget caps in the ledger: the check and the mark-as-sending are one transaction."""

from __future__ import annotations

import threading
from decimal import Decimal

from klingwatch.clock import ManualClock
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source


def _tasks(n: int, units: str = "10", prefix: str = "t") -> list[NewTask]:
    return [
        NewTask(
            product="text2video",
            request={"prompt": f"a heron, take {i}"},
            external_task_id=f"{prefix}-{i}",
            units_estimated=units,
        )
        for i in range(n)
    ]


def _queue(ledger: Ledger, n: int, *, cap: str | None, units: str = "10") -> list[int]:
    ledger.ensure_batch("b")
    if cap is not None:
        ledger.set_cap("b", Decimal(cap))
    return ledger.add_tasks("b", _tasks(n, units)).added


def test_a_cap_marks_what_fits_and_holds_the_rest_with_the_reason(ledger: Ledger) -> None:
    ids = _queue(ledger, 5, cap="35")
    claim = ledger.mark_sending(ids, 1.0)
    assert claim.marked == ids[:3]
    assert claim.held == ids[3:]
    held = ledger.task(ids[3])
    assert held is not None
    assert held.status is LocalStatus.QUEUED
    assert held.send_attempts == 0
    assert held.hold_reason == "held: budget cap 35 units, 30 sent"
    # The send queue offers only the tasks marked sending (still queued until an answer),
    # not the held ones; the budget says what counts.
    assert [t.local_id for t in ledger.queued()] == ids[:3]
    budget = ledger.budget("b")
    assert budget is not None
    assert (budget.max_units, budget.committed, budget.estimated, budget.held) == (
        Decimal(35),
        Decimal(30),
        Decimal(50),
        2,
    )
    assert ledger.held_count(batch="b") == 2


def test_a_task_sent_before_is_counted_once_when_it_is_sent_again(ledger: Ledger) -> None:
    ids = _queue(ledger, 2, cap="15")
    assert ledger.mark_sending(ids[0], 1.0).marked == [ids[0]]
    # A 1303 left it queued: sending it again costs nothing more against the cap ...
    assert ledger.mark_sending(ids[0], 2.0).marked == [ids[0]]
    # ... while the second task still would pass it.
    assert ledger.mark_sending(ids[1], 3.0).held == [ids[1]]


def test_a_refused_create_gives_its_estimate_back(ledger: Ledger, clock: ManualClock) -> None:
    ids = _queue(ledger, 2, cap="10")
    ledger.mark_sending(ids, 1.0)
    assert ledger.held_count() == 1
    ledger.apply(
        Observation(
            status=LocalStatus.REJECTED,
            source=Source.CREATE,
            at=2.0,
            local_id=ids[0],
            status_msg="content policy",
        )
    )
    assert ledger.review_holds() == 1
    assert [t.local_id for t in ledger.queued()] == [ids[1]]  # ids[0] is final now
    assert ledger.mark_sending(ids[1], 3.0).marked == [ids[1]]


def test_raising_the_cap_frees_what_fits_oldest_first(ledger: Ledger) -> None:
    ids = _queue(ledger, 4, cap="10")
    ledger.mark_sending(ids, 1.0)
    budget = ledger.set_cap("b", Decimal(25))
    assert budget.held == 2  # 10 sent + 10 freed fits 25; the last ones still do not
    assert [t.local_id for t in ledger.queued()] == ids[:2]
    remaining = ledger.task(ids[2])
    assert remaining is not None
    assert remaining.hold_reason == "held: budget cap 25 units, 10 sent"
    # Removing the cap frees everything.
    assert ledger.set_cap("b", None).held == 0
    assert len(ledger.queued()) == 4


def test_a_task_without_an_estimate_is_never_sent_under_a_cap(ledger: Ledger) -> None:
    ledger.ensure_batch("b")
    ledger.set_cap("b", Decimal(100))
    [local_id] = ledger.add_tasks(
        "b", [NewTask(product="text2video", request={"prompt": "x"}, external_task_id="x")]
    ).added
    claim = ledger.mark_sending(local_id, 1.0)
    assert claim.held == [local_id]
    task = ledger.task(local_id)
    assert task is not None
    assert task.hold_reason is not None
    assert "no unit estimate" in task.hold_reason


def test_batches_without_a_cap_are_never_held(ledger: Ledger) -> None:
    ids = _queue(ledger, 3, cap=None, units="1000")
    assert ledger.mark_sending(ids, 1.0).marked == ids


def test_two_writers_racing_for_the_same_cap_never_pass_it(ledger_url: str) -> None:
    """Two processes' worth of ledgers (separate engines and connections) mark sending at
    once: the batch row lock (PostgreSQL) or the write lock (SQLite) serializes the checks."""
    clock = ManualClock()
    first = Ledger.open(ledger_url, clock=clock)
    second = Ledger.open(ledger_url, clock=clock)
    try:
        first.ensure_batch("b")
        first.set_cap("b", Decimal(50))
        ids = first.add_tasks("b", _tasks(40, units="5")).added
        marked: list[int] = []
        lock = threading.Lock()

        def send(ledger: Ledger, mine: list[int]) -> None:
            for local_id in mine:
                claim = ledger.mark_sending(local_id, 1.0)
                with lock:
                    marked.extend(claim.marked)

        threads = [
            threading.Thread(target=send, args=(first, ids[0::2])),
            threading.Thread(target=send, args=(second, ids[1::2])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(marked) == 10  # 10 x 5 units = the cap, exactly
        budget = first.budget("b")
        assert budget is not None
        assert budget.committed == Decimal(50)
        assert budget.held == 30
    finally:
        first.close()
        second.close()
