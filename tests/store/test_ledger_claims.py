"""Row leases (claim_due / claim_queued): replicas split the work; dead ones' leases expire."""

from __future__ import annotations

import threading
from collections.abc import Callable

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


def _race(
    url: str, clock: ManualClock, owners: list[str], work: Callable[[Ledger, str], None]
) -> None:
    """``work(ledger, owner)`` for every owner at once, each on a ledger of its own (a replica)."""
    start = threading.Barrier(len(owners))
    errors: list[BaseException] = []

    def replica(owner: str) -> None:
        try:
            with Ledger.open(url, clock=clock) as ledger:
                start.wait()
                work(ledger, owner)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(owner,)) for owner in owners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []


@pytest.mark.postgres
def test_two_replicas_claiming_at_once_never_claim_the_same_task(postgres_url: str) -> None:
    clock = ManualClock()
    now = clock.time()
    with Ledger.open(postgres_url, clock=clock) as setup:
        ids = _submitted(setup, 400, at=now)

    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def replica(ledger: Ledger, owner: str) -> None:
        while batch := ledger.claim_due(now, owner=owner, lease_seconds=60, limit=9):
            claimed[owner].extend(t.local_id for t in batch)
            # As the engine does after looking: the next look is later.
            ledger.schedule((t.local_id, now + 300) for t in batch)

    _race(postgres_url, clock, list(claimed), replica)
    a, b = set(claimed["a"]), set(claimed["b"])
    assert len(a) == len(claimed["a"])
    assert len(b) == len(claimed["b"])
    assert a.isdisjoint(b)
    assert a | b == set(ids)


def _queued(ledger: Ledger, n: int, *, cost: int = 1, prefix: str = "q") -> list[int]:
    tasks = [NewTask("text2video", {}, f"{prefix}{i}", slot_cost=cost) for i in range(n)]
    return ledger.add_tasks("b", tasks).added


def test_the_send_claim_fits_the_free_slots_counted_across_owners(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.time()
    _submitted(ledger, 2, at=now)  # two slots held on Kling
    ids = _queued(ledger, 6)

    def claim(owner: str, at: float) -> list[int]:
        got = ledger.claim_to_send(
            at, owner=owner, lease_seconds=30, family="video", slot_limit=5, most=10
        )
        return [t.local_id for t in got]

    assert claim("a", now) == ids[:3]
    # "a"'s three creates are on the wire (queued, leased): "b" finds no slot free.
    assert ledger.slots_in_use("video", now) == 5
    assert claim("b", now) == []
    ledger.release(ids[:1], owner="a")  # refused: back in the queue, its slot free again
    assert claim("b", now) == ids[:1]
    # Both died: once their leases run out their claims stop counting (and are free to take).
    assert ledger.slots_in_use("video", now + 31) == 2
    assert claim("c", now + 31) == ids[:3]


def test_with_the_slot_limit_unknown_one_create_is_on_the_wire_at_a_time(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.time()
    ids = _queued(ledger, 3)

    def claim(owner: str, most: int = 1) -> list[int]:
        got = ledger.claim_to_send(
            now, owner=owner, lease_seconds=30, family="video", slot_limit=None, most=most
        )
        return [t.local_id for t in got]

    assert claim("a") == ids[:1]
    assert claim("b") == []
    ledger.apply(Observation(LocalStatus.SUBMITTED, Source.CREATE, now, local_id=ids[0]))
    ledger.release(ids[:1], owner="a")
    assert claim("b") == ids[1:2]
    # As the submitter ramps up (two on the wire at once), one more may go beside b's; no more.
    assert claim("c", most=2) == ids[2:3]
    assert claim("d", most=2) == []


def test_with_the_slot_limit_unknown_a_task_of_any_cost_is_sent_alone(
    ledger: Ledger, clock: ManualClock
) -> None:
    # Four images in one request cost four slots; with no limit known yet it goes on its own
    # (the demo's postcards once waited for ever behind a room of one).
    now = clock.time()
    big = _queued(ledger, 1, cost=4, prefix="big")
    got = ledger.claim_to_send(
        now, owner="a", lease_seconds=30, family="video", slot_limit=None, most=10
    )
    assert [t.local_id for t in got] == big


def test_a_task_that_does_not_fit_keeps_its_place_in_the_queue(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.time()
    big = _queued(ledger, 1, cost=4, prefix="big")
    _queued(ledger, 2, prefix="small")
    _submitted(ledger, 2, at=now)
    got = ledger.claim_to_send(
        now, owner="a", lease_seconds=30, family="video", slot_limit=5, most=10
    )
    assert got == []  # 3 free, the oldest needs 4: nothing jumps ahead of it
    assert big


def test_renew_keeps_only_leases_still_held(ledger: Ledger, clock: ManualClock) -> None:
    now = clock.time()
    ids = _submitted(ledger, 2, at=now)
    ledger.claim_due(now, owner="a", lease_seconds=10)
    # "a" was too slow: its lease on the second ran out and "b" took it.
    ledger.release(ids[1:], owner="a")
    ledger.claim_due(now, owner="b", lease_seconds=10)
    assert ledger.renew(ids, now + 60, owner="a") == ids[:1]
    # The renewed lease holds past its first end; the one it lost does not come back.
    assert [t.local_id for t in ledger.claim_due(now + 30, owner="c", lease_seconds=10)] == ids[1:]


@pytest.mark.postgres
def test_replicas_claiming_sends_at_once_never_exceed_the_slots(postgres_url: str) -> None:
    """Many claimers racing on PostgreSQL: the per-family lock makes count-and-lease atomic."""
    clock = ManualClock()
    now = clock.time()
    limit = 7
    with Ledger.open(postgres_url, clock=clock) as setup:
        _queued(setup, 60)
    claimed: dict[str, list[int]] = {o: [] for o in "abcd"}

    def replica(ledger: Ledger, owner: str) -> None:
        for _ in range(10):
            got = ledger.claim_to_send(
                now, owner=owner, lease_seconds=60, family="video", slot_limit=limit, most=3
            )
            claimed[owner].extend(t.local_id for t in got)

    _race(postgres_url, clock, list(claimed), replica)
    taken = [i for ids in claimed.values() for i in ids]
    assert len(taken) == limit
    assert len(set(taken)) == limit
