"""Ledger.verify (klingwatch.store.verify): a sound ledger passes, a tampered one is caught."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

S = LocalStatus


def _two_tasks(ledger: Ledger) -> list[int]:
    ids = ledger.add_tasks("b", [NewTask("t2v", {}, "a"), NewTask("t2v", {}, "b")]).added
    ledger.apply_many(
        [
            Observation(S.SUBMITTED, Source.CREATE, 1.0, local_id=ids[0]),
            Observation(S.SUCCEED, Source.GET, 2.0, local_id=ids[0]),
            Observation(S.UNKNOWN, Source.CREATE, 1.0, local_id=ids[1]),
            Observation(S.QUEUED, Source.RECOVERY, 2.0, local_id=ids[1]),
        ]
    )
    ledger.set_stuck(ids[1], True, "never sent", 3.0)
    return ids


def test_a_sound_ledger_has_no_inconsistencies(ledger: Ledger) -> None:
    _two_tasks(ledger)
    assert ledger.verify() == []


def test_a_status_written_behind_the_doors_back_is_caught(ledger: Ledger) -> None:
    ids = _two_tasks(ledger)
    engine = create_engine(ledger.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET status = 'failed' WHERE id = :i"), {"i": ids[1]})
        conn.execute(
            text("DELETE FROM events WHERE local_id = :i AND from_status IS NULL"), {"i": ids[0]}
        )
    engine.dispose()
    problems = ledger.verify()
    assert f"task {ids[1]}: status failed but its last event says queued" in problems
    assert f"task {ids[0]}: timeline does not start with its creation" in problems


def test_a_forbidden_move_in_a_timeline_is_caught(ledger: Ledger) -> None:
    ids = _two_tasks(ledger)
    engine = create_engine(ledger.url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (local_id, at, from_status, to_status, source)"
                " VALUES (:i, 9, 'succeed', 'processing', 'get')"
            ),
            {"i": ids[0]},
        )
        conn.execute(text("UPDATE tasks SET status = 'processing' WHERE id = :i"), {"i": ids[0]})
    engine.dispose()
    assert ledger.verify() == [f"task {ids[0]}: succeed->processing (get) is not allowed"]
