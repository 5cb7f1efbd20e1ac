"""Incidents in the ledger (klingwatch.store.incidents): one message per incident, replicas too."""

from __future__ import annotations

import threading

import pytest

from klingwatch.clock import ManualClock
from klingwatch.store import Ledger
from klingwatch.store.incidents import Sighting

COOL = {"stuck": 600.0, "batch_finished": None}


def stuck(subject: str = "t1", text: str = "stuck for 40m") -> Sighting:
    return Sighting("stuck", subject, f"{subject} is stuck", text)


def claim(ledger: Ledger, at: float, owner: str = "a") -> list[str]:
    return [
        i.subject for i in ledger.claim_incidents(at, owner=owner, lease_seconds=60, cooldowns=COOL)
    ]


def test_an_incident_is_owed_one_message_then_again_only_after_its_cooldown(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.time()
    opened, closed = ledger.observe_incidents(["stuck"], [stuck()], now)
    assert len(opened) == 1
    assert closed == []
    [incident] = ledger.claim_incidents(now, owner="a", lease_seconds=60, cooldowns=COOL)
    assert ledger.finish_incident(incident.id, owner="a", at=now)
    # Seen again and again: the same incident, nothing more owed until the cool-down passed.
    for later in (now + 30, now + 300, now + 599):
        assert ledger.observe_incidents(["stuck"], [stuck(text="stuck for 50m")], later) == ([], [])
        assert claim(ledger, later) == []
    assert claim(ledger, now + 601) == ["t1"]
    [row] = ledger.incidents()
    assert row.message == "stuck for 50m"  # the text follows the latest round
    assert row.notifications == 1
    assert row.open


def test_a_rule_without_cooldown_is_told_once(ledger: Ledger, clock: ManualClock) -> None:
    now = clock.time()
    done = Sighting("batch_finished", "b1", "b1 finished", "10 succeed")
    ledger.observe_incidents(["batch_finished"], [done], now)
    [incident] = ledger.claim_incidents(now, owner="a", lease_seconds=60, cooldowns=COOL)
    ledger.finish_incident(incident.id, owner="a", at=now)
    ledger.observe_incidents(["batch_finished"], [done], now + 10**6)
    assert claim(ledger, now + 10**6) == []


def test_a_cleared_condition_closes_and_a_new_one_is_a_new_message(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.time()
    ledger.observe_incidents(["stuck"], [stuck("t1"), stuck("t2")], now)
    for incident in ledger.claim_incidents(now, owner="a", lease_seconds=60, cooldowns=COOL):
        ledger.finish_incident(incident.id, owner="a", at=now)
    # t1 moves again; a round of another rule does not touch the stuck incidents.
    assert ledger.observe_incidents(["paused"], [], now + 1) == ([], [])
    _, closed = ledger.observe_incidents(["stuck"], [stuck("t2")], now + 2)
    assert [i.subject for i in ledger.incidents(open_only=True)] == ["t2"]
    assert len(closed) == 1
    # t1 stuck again: open again, owed a message at once (no cool-down across incidents).
    opened, _ = ledger.observe_incidents(["stuck"], [stuck("t1"), stuck("t2")], now + 3)
    assert len(opened) == 1
    assert claim(ledger, now + 3) == ["t1"]


def test_a_claimed_incident_is_skipped_by_others_until_its_lease_expires(
    ledger: Ledger, clock: ManualClock
) -> None:
    now = clock.time()
    ledger.observe_incidents(["stuck"], [stuck()], now)
    assert claim(ledger, now, owner="a") == ["t1"]
    assert claim(ledger, now + 1, owner="b") == []
    # "a" died mid-send: after its lease, "b" sends it; "a" can no longer record a round.
    [taken] = ledger.claim_incidents(now + 61, owner="b", lease_seconds=60, cooldowns=COOL)
    assert not ledger.finish_incident(taken.id, owner="a", at=now + 62)
    assert ledger.finish_incident(taken.id, owner="b", at=now + 62)


def test_targets_a_round_missed_stay_owed_alone(ledger: Ledger, clock: ManualClock) -> None:
    now = clock.time()
    ledger.observe_incidents(["stuck"], [stuck()], now)
    [incident] = ledger.claim_incidents(now, owner="a", lease_seconds=60, cooldowns=COOL)
    ledger.finish_incident(incident.id, owner="a", at=now, owed=["slack-key"])
    [again] = ledger.claim_incidents(now + 1, owner="a", lease_seconds=60, cooldowns=COOL)
    assert again.pending_targets == ["slack-key"]
    assert again.notified_at is None
    ledger.finish_incident(again.id, owner="a", at=now + 1)
    [row] = ledger.incidents()
    assert row.pending_targets is None
    assert row.notified_at == now + 1
    assert claim(ledger, now + 2) == []


@pytest.mark.postgres
def test_replicas_racing_on_one_postgresql_send_each_incident_once(postgres_url: str) -> None:
    clock = ManualClock()
    now = clock.time()
    Ledger.open(postgres_url, clock=clock).close()
    subjects = [f"t{i}" for i in range(30)]
    sent: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    start = threading.Barrier(len(sent))
    errors: list[BaseException] = []

    def replica(owner: str) -> None:
        try:
            with Ledger.open(postgres_url, clock=clock) as ledger:
                start.wait()
                # Every replica sees every incident, round after round, and sends what it claims.
                for round_at in (now, now + 1, now + 2):
                    ledger.observe_incidents(["stuck"], [stuck(s) for s in subjects], round_at)
                    for incident in ledger.claim_incidents(
                        round_at, owner=owner, lease_seconds=60, cooldowns=COOL, limit=7
                    ):
                        sent[owner].append(incident.subject)
                        ledger.finish_incident(incident.id, owner=owner, at=round_at)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(owner,)) for owner in sent]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    everything = [s for names in sent.values() for s in names]
    assert sorted(everything) == sorted(subjects)  # each once, by one replica or another
    with Ledger.open(postgres_url, clock=clock) as ledger:
        assert len(ledger.incidents()) == len(subjects)
        assert all(i.notifications == 1 for i in ledger.incidents())
