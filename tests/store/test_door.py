"""The one door's rules (klingwatch.store.door), as a pure function, hammered by hypothesis."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycles import Lifecycle, lifecycles

from klingwatch.store import LocalStatus, Observation, Source
from klingwatch.store.door import TaskState, accepts, decide

S = LocalStatus


def run(reports: list[Observation]) -> tuple[TaskState, int]:
    """Apply reports in the given order from a fresh queued task; final state and how many
    status changes the door accepted (each is one event in the ledger)."""
    state = TaskState(status=S.QUEUED)
    changes = 0
    for obs in reports:
        verdict = decide(state, obs)
        if verdict.status_changed:
            changes += 1
        state = verdict.state
    return state, changes


def obs(status: LocalStatus, source: Source = Source.GET, **facts: object) -> Observation:
    return Observation(status=status, source=source, at=100.0, **facts)  # type: ignore[arg-type]


# -- the transition table ------------------------------------------------------------------

FORWARD = [S.QUEUED, S.UNKNOWN, S.SUBMITTED, S.PROCESSING]


@pytest.mark.parametrize(("old", "new"), list(itertools.product(LocalStatus, LocalStatus)))
def test_every_transition_follows_the_table(old: LocalStatus, new: LocalStatus) -> None:
    expected: bool
    if old is new or old.is_final:
        expected = False
    elif new is S.REJECTED:
        expected = old in (S.QUEUED, S.UNKNOWN)
    elif new is S.QUEUED:
        expected = False  # only with RECOVERY, below
    else:
        expected = new.rank > old.rank
    assert accepts(old, new, Source.GET) is expected


def test_only_a_recovery_moves_unknown_back_to_queued() -> None:
    assert accepts(S.UNKNOWN, S.QUEUED, Source.RECOVERY)
    for source in Source:
        if source is not Source.RECOVERY:
            assert not accepts(S.UNKNOWN, S.QUEUED, source)
    for old in (S.SUBMITTED, S.PROCESSING, S.SUCCEED, S.FAILED, S.REJECTED):
        assert not accepts(old, S.QUEUED, Source.RECOVERY)


def test_a_late_processing_never_overwrites_succeed() -> None:
    state = TaskState(status=S.SUCCEED, task_id="k", kling_updated_ms=5_000)
    verdict = decide(state, obs(S.PROCESSING, task_id="k", kling_updated_ms=9_000))
    assert not verdict.changed
    assert verdict.state == state


def test_a_final_status_never_changes_to_another_final_status() -> None:
    state = TaskState(status=S.FAILED, status_msg="bad")
    assert not decide(state, obs(S.SUCCEED, result={"videos": []})).changed


def test_reaching_a_final_status_records_kling_finish_and_detection_times() -> None:
    state = TaskState(status=S.PROCESSING, stuck=True, stuck_reason="slow")
    after = decide(state, obs(S.SUCCEED, kling_updated_ms=123_456, result={"videos": []})).state
    assert after.finished_at == 123.456
    assert after.detected_at == 100.0
    assert after.stuck is False
    assert after.stuck_reason is None


def test_first_processing_report_marks_when_kling_started() -> None:
    after = decide(TaskState(status=S.SUBMITTED), obs(S.PROCESSING, kling_updated_ms=7_000)).state
    assert after.processing_at == 100.0
    assert after.kling_processing_ms == 7_000
    later = decide(after, Observation(S.PROCESSING, Source.GET, 200.0, kling_updated_ms=9_000))
    assert later.state.processing_at == 100.0
    assert later.state.kling_processing_ms == 7_000
    assert later.state.kling_updated_ms == 9_000
    assert later.fields_changed
    assert not later.status_changed


def test_same_status_fills_missing_facts_without_a_status_change() -> None:
    state = TaskState(status=S.SUCCEED, kling_updated_ms=5_000)
    verdict = decide(state, obs(S.SUCCEED, task_id="k9", result={"videos": [{"url": "u"}]}))
    assert verdict.fields_changed
    assert not verdict.status_changed
    assert verdict.state.task_id == "k9"
    assert verdict.state.result == {"videos": [{"url": "u"}]}


def test_an_older_report_does_not_replace_a_newer_fact() -> None:
    state = TaskState(status=S.FAILED, status_msg="newest", kling_updated_ms=9_000)
    verdict = decide(state, obs(S.FAILED, status_msg="older", kling_updated_ms=8_000))
    assert not verdict.changed


def test_a_different_task_id_for_a_known_task_is_ignored() -> None:
    state = TaskState(status=S.SUBMITTED, task_id="first")
    assert not decide(state, obs(S.SUBMITTED, task_id="other")).changed


def test_a_create_answer_arriving_after_the_callback_still_attaches_the_task_id() -> None:
    state = decide(TaskState(status=S.QUEUED), obs(S.SUCCEED, Source.CALLBACK)).state
    verdict = decide(state, obs(S.SUBMITTED, Source.CREATE, task_id="k1", kling_created_ms=5))
    assert not verdict.status_changed
    assert verdict.state.status is S.SUCCEED
    assert (verdict.state.task_id, verdict.state.kling_created_ms) == ("k1", 5)


def test_kling_empty_message_counts_as_no_message() -> None:
    after = decide(TaskState(status=S.PROCESSING), obs(S.SUCCEED, status_msg="")).state
    assert after.status_msg is None


# -- properties over whole lifecycles ------------------------------------------------------


@st.composite
def shuffled(draw: st.DrawFn) -> tuple[Lifecycle, list[Observation]]:
    """A lifecycle, and its reports reordered with some of them repeated."""
    life = draw(lifecycles())
    extra = draw(st.lists(st.sampled_from(life.reports), max_size=len(life.reports)))
    return life, draw(st.permutations(life.reports + extra))


@settings(max_examples=300, deadline=None)
@given(shuffled())
def test_any_reordering_or_duplication_ends_in_the_ordered_final_state(
    case: tuple[Lifecycle, list[Observation]],
) -> None:
    life, mixed = case
    ordered, _ = run(life.reports)
    assert (ordered.status, ordered.task_id, ordered.result, ordered.status_msg) == (
        life.final_status,
        life.task_id,
        life.result,
        life.status_msg,
    )
    final, _ = run(mixed)
    assert final.status is ordered.status
    assert final.task_id == ordered.task_id
    assert final.result == ordered.result
    assert final.status_msg == ordered.status_msg
    assert final.units == ordered.units


@settings(max_examples=200, deadline=None)
@given(shuffled())
def test_rank_never_falls_except_by_recovery(case: tuple[Lifecycle, list[Observation]]) -> None:
    _, mixed = case
    state = TaskState(status=S.QUEUED)
    for report in mixed:
        after = decide(state, report).state
        if after.status.rank < state.status.rank:
            assert (state.status, after.status, report.source) == (
                S.UNKNOWN,
                S.QUEUED,
                Source.RECOVERY,
            )
        state = after


@settings(max_examples=200, deadline=None)
@given(shuffled())
def test_one_status_change_per_status_actually_moved_through(
    case: tuple[Lifecycle, list[Observation]],
) -> None:
    _, mixed = case
    state = TaskState(status=S.QUEUED)
    visited = [state.status]
    changes = 0
    for report in mixed:
        verdict = decide(state, report)
        assert verdict.status_changed == (verdict.state.status is not state.status)
        if verdict.status_changed:
            changes += 1
            visited.append(verdict.state.status)
        state = verdict.state
    assert changes == len(visited) - 1
    # Without a recovery, each status is entered at most once.
    if not any(r.source is Source.RECOVERY for r in mixed):
        assert len(set(visited)) == len(visited)


@settings(max_examples=200, deadline=None)
@given(lifecycles())
def test_applying_everything_twice_changes_nothing_the_second_time(life: Lifecycle) -> None:
    state, _ = run(life.reports)
    for report in life.reports:
        assert not decide(state, report).changed, report
