"""The one door through the real database (klingwatch.store.apply): order and repeats don't
matter, every status change is exactly one event, and batches equal one-by-one application."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifecycles import Lifecycle, lifecycles

from klingwatch.store import Ledger, NewTask, Observation, TaskRecord

_counter = itertools.count()


def _fresh_pair(ledger: Ledger) -> tuple[str, str]:
    n = next(_counter)
    ordered, mixed = f"ordered-{n}", f"mixed-{n}"
    ledger.add_tasks(
        "prop",
        [NewTask("text2video", {"prompt": "p"}, ordered), NewTask("text2video", {}, mixed)],
    )
    return ordered, mixed


def _as(task: str, reports: list[Observation]) -> list[Observation]:
    # Each copy speaks of its own row only (Kling ids are dropped: two rows share them here).
    return [replace(r, external_task_id=task, task_id=None) for r in reports]


def _facts(record: TaskRecord | None) -> tuple[object, ...]:
    assert record is not None
    return (record.status, record.result, record.status_msg, record.units)


@st.composite
def mixed_batches(draw: st.DrawFn) -> tuple[Lifecycle, list[list[Observation]]]:
    """A lifecycle, and its reports shuffled, partly repeated, cut into apply_many batches."""
    life = draw(lifecycles())
    extra = draw(st.lists(st.sampled_from(life.reports), max_size=len(life.reports)))
    mixed = draw(st.permutations(life.reports + extra))
    cuts = sorted(draw(st.lists(st.integers(0, len(mixed)), max_size=3)))
    edges = [0, *cuts, len(mixed)]
    return life, [mixed[a:b] for a, b in itertools.pairwise(edges)]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mixed_batches())
def test_shuffled_repeated_batches_end_where_the_ordered_reports_do(
    ledger: Ledger, case: tuple[Lifecycle, list[list[Observation]]]
) -> None:
    life, batches = case
    ordered, mixed = _fresh_pair(ledger)

    ordered_changes = [ledger.apply(r) for r in _as(ordered, life.reports)]
    mixed_changes = [c for batch in batches for c in ledger.apply_many(_as(mixed, batch))]

    assert _facts(ledger.task(ordered)) == _facts(ledger.task(mixed))
    assert _facts(ledger.task(ordered))[0] is life.final_status
    for name, changes in ((ordered, ordered_changes), (mixed, mixed_changes)):
        record = ledger.task(name)
        assert record is not None
        status_events = [e for e in ledger.events(record.local_id) if e.from_status is not None]
        accepted = [c for c in changes if c is not None and c.status_changed]
        # Exactly one event per accepted status change, in the same order.
        assert [(e.from_status, e.to_status) for e in status_events] == [
            (c.old, c.new) for c in accepted
        ]
    assert ledger.verify() == []


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lives=st.lists(lifecycles(), min_size=2, max_size=6), seed=st.randoms())
def test_one_batch_of_many_tasks_equals_applying_them_one_by_one(
    ledger: Ledger, lives: list[Lifecycle], seed: object
) -> None:
    pairs = [_fresh_pair(ledger) for _ in lives]
    one_by_one = [
        r for (a, _), life in zip(pairs, lives, strict=True) for r in _as(a, life.reports)
    ]
    together = [r for (_, b), life in zip(pairs, lives, strict=True) for r in _as(b, life.reports)]
    seed.shuffle(together)  # type: ignore[attr-defined]
    for r in one_by_one:
        ledger.apply(r)
    ledger.apply_many(together)
    for a, b in pairs:
        assert _facts(ledger.task(a)) == _facts(ledger.task(b))
