"""Row leases (claim_due / claim_queued): replicas split the work; dead ones' leases expire."""

from __future__ import annotations

import threading

import pytest

from klingwatch.clock import ManualClock
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source


def _submitted(ledger: Ledger, n: int, *, at: float) -> list[int]:
    ids = ledger.add_tasks("b", [NewTask("text2video", {}, f"e{i}") for i in range(n)]).added
    ledger.apply_many(
        Observation(LocalStatus.SUBMITTED, Source.CREATE, at, local_id=i, task_id=f"k{i}")
        for i in ids
    )
    return ids


def test_claim_due_with_one_owner_is_due(ledger: Ledger, clock: ManualClock) -> None:
    now = clock.time()
    ids = _submitted(ledger, 5, at=now)
    ledger.schedule([(ids[0], now + 100)])
    claimed = ledger.claim_due(now, owner="me", lease_seconds=30)
    assert [t.local_id for t in claimed] == [t.local_id for t in ledger.due(now)]
    assert all(t.lease_owner == "me" and t.lease_until == now + 30 for t in claimed)
    # The owner takes its own tasks again whenever they are due.
    assert len(ledger.claim_due(now + 1, owner="me", lease_seconds=30)) == 4


def test_a_leased_task_is_skipped_by_others_until_the_lease_expires(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.time()
    ids = _submitted(ledger, 3, at=now)
    assert len(ledger.claim_due(now, owner="a", lease_seconds=30)) == 3
    assert ledger.claim_due(now + 10, owner="b", lease_seconds=30) == []
    # "a" died: after its lease ran out, "b" takes everything over.
    taken = ledger.claim_due(now + 31, owner="b", lease_seconds=30)
    assert sorted(t.local_id for t in taken) == ids
    ledger.release(ids[:1], owner="b")
    assert [t.local_id for t in ledger.claim_due(now + 32, owner="c", lease_seconds=30)] == ids[:1]


def test_claim_queued_leases_tasks_to_one_submitter(ledger: Ledger, clock: ManualClock) -> None:
    now = clock.time()
    ledger.add_tasks(
        "b",
        [NewTask("text2video", {}, "v1"), NewTask("image_generation", {}, "i1", family="image")],
    )
    first = ledger.claim_queued(now, owner="a", lease_seconds=60, family="video")
    assert [t.external_task_id for t in first] == ["v1"]
    assert ledger.claim_queued(now, owner="b", lease_seconds=60, family="video") == []
    assert [t.external_task_id for t in ledger.claim_queued(now, owner="b", lease_seconds=60)] == [
        "i1"
    ]


@pytest.mark.postgres
def test_two_replicas_claiming_at_once_never_claim_the_same_task(postgres_url: str) -> None:
    clock = ManualClock()
    now = clock.time()
    with Ledger.open(postgres_url, clock=clock) as setup:
        ids = _submitted(setup, 400, at=now)

    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def replica(owner: str) -> None:
        try:
            with Ledger.open(postgres_url, clock=clock) as ledger:
                start.wait()
                while batch := ledger.claim_due(now, owner=owner, lease_seconds=60, limit=9):
                    claimed[owner].extend(t.local_id for t in batch)
                    # As the engine does after looking: the next look is later.
                    ledger.schedule((t.local_id, now + 300) for t in batch)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(owner,)) for owner in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    a, b = set(claimed["a"]), set(claimed["b"])
    assert len(a) == len(claimed["a"])
    assert len(b) == len(claimed["b"])
    assert a.isdisjoint(b)
    assert a | b == set(ids)
