"""The alert rules (klingwatch.monitor.alert_rules): pure functions from facts to incidents."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from task_records import task_record

from klingwatch.monitor.alert_rules import (
    BATCH_FINISHED,
    CALLBACKS_SILENT,
    FAILURE_RATIO,
    PAUSED,
    RESULTS_EXPIRING,
    STUCK,
    AlertSettings,
    BatchFacts,
    Facts,
    evaluate,
)
from klingwatch.monitor.gates import PauseState
from klingwatch.store import LocalStatus, Source, TaskRecord

NOW = 1_767_225_600.0
SETTINGS = AlertSettings(
    failure_percent=20, failure_min_finished=10, public_url="https://kw.example"
)


def task(**kw: Any) -> TaskRecord:
    return task_record(**{"external_task_id": "spring-1", "status": LocalStatus.PROCESSING, **kw})


def counts(**by_status: int) -> dict[LocalStatus, int]:
    out = dict.fromkeys(LocalStatus, 0)
    out.update({LocalStatus(k): v for k, v in by_status.items()})
    return out


def facts(**kw: Any) -> Facts:
    kw.setdefault("now", NOW)
    kw.setdefault("since", NOW - 3600)
    return Facts(**kw)


def keys(found: list[Any]) -> list[tuple[str, str]]:
    return [(s.rule, s.subject) for s in found]


def test_nothing_wrong_opens_no_incident() -> None:
    quiet = facts(batches=[BatchFacts("b", counts(processing=3, succeed=20))])
    assert evaluate(quiet, SETTINGS) == []


def test_a_flagged_task_is_one_stuck_incident_with_the_detectors_reason() -> None:
    stuck = task(stuck=True, stuck_reason="processing for 40m00s, past its p99 of 20m00s")
    [found] = evaluate(facts(stuck=[stuck]), SETTINGS)
    assert (found.rule, found.subject) == (STUCK, "spring-1")
    assert "past its p99 of 20m00s" in found.message
    assert "https://kw.example/batches/spring" in found.message


def test_failure_ratio_fires_over_the_threshold_once_enough_tasks_finished() -> None:
    burst = BatchFacts("b", counts(processing=5, succeed=7, failed=3))  # 30% of 10
    [found] = evaluate(facts(batches=[burst]), SETTINGS)
    assert (found.rule, found.subject) == (FAILURE_RATIO, "b")
    assert "3 of 10 finished tasks failed" in found.message
    too_few = BatchFacts("b", counts(processing=5, succeed=3, failed=6))  # 9 finished
    assert evaluate(facts(batches=[too_few]), SETTINGS) == []
    at_threshold = BatchFacts("b", counts(processing=5, succeed=8, failed=2))  # 20%: not over
    assert evaluate(facts(batches=[at_threshold]), SETTINGS) == []


def test_rejections_count_as_failures() -> None:
    rejected = BatchFacts("b", counts(queued=4, succeed=5, rejected=5))
    assert keys(evaluate(facts(batches=[rejected]), SETTINGS)) == [(FAILURE_RATIO, "b")]


def test_a_burst_at_the_very_end_is_told_and_the_incident_closes_after_the_cooldown() -> None:
    ended = BatchFacts("b", counts(succeed=5, failed=5), last_finish=NOW - 60)
    found = evaluate(facts(batches=[ended], since=NOW - 3600), SETTINGS)
    assert keys(found) == [(FAILURE_RATIO, "b"), ("batch_finished", "b")]
    assert "The batch has ended." in found[0].message
    # Six hours on (the cool-down), the finished batch is old news: the incident closes.
    later = facts(batches=[ended], now=NOW + 6 * 3600, since=NOW - 3600)
    assert keys(evaluate(later, SETTINGS)) == [("batch_finished", "b")]
    # A batch that ended before alerts watched the ledger is not reported at all.
    assert evaluate(facts(batches=[ended], since=NOW), SETTINGS) == []


def test_a_pause_names_kling_code_its_meaning_and_what_waits() -> None:
    pause = PauseState(reason="resource pack exhausted", at=NOW, code=1102)
    batch = BatchFacts("b", counts(queued=12, processing=1))
    [found] = evaluate(facts(pause=pause, batches=[batch]), SETTINGS)
    assert (found.rule, found.subject) == (PAUSED, "submissions")
    assert "1102" in found.title
    assert "resource pack is exhausted" in found.title
    assert "12 tasks wait" in found.message
    assert "klingwatch resume" in found.message


def test_callbacks_are_silent_when_polling_finds_every_finish() -> None:
    silent = facts(finished_by={Source.GET: 3, Source.LIST: 2})
    assert keys(evaluate(silent, SETTINGS)) == [(CALLBACKS_SILENT, "callbacks")]
    some_arrive = facts(finished_by={Source.LIST: 9, Source.CALLBACK: 1})
    assert evaluate(some_arrive, SETTINGS) == []
    too_few = facts(finished_by={Source.LIST: 4})
    assert evaluate(too_few, SETTINGS) == []


def test_expiring_results_are_one_incident_per_batch_with_the_first_deletion_date() -> None:
    soon = task(status=LocalStatus.SUCCEED, kling_updated_ms=int((NOW - 27 * 86400) * 1000))
    later = replace(soon, local_id=8, external_task_id="spring-2", kling_updated_ms=None)
    later = replace(later, finished_at=NOW - 26 * 86400)
    [found] = evaluate(facts(expiring=[soon, later]), SETTINGS)
    assert (found.rule, found.subject) == (RESULTS_EXPIRING, "spring")
    assert "2 succeeded tasks of batch spring are not downloaded" in found.message
    assert "2026-01-04" in found.message  # NOW + 3 days
    assert "klingwatch download --batch spring" in found.message


def test_a_finished_batch_is_summed_up_with_counts_units_and_its_page() -> None:
    done = BatchFacts(
        "spring",
        counts(succeed=8, failed=1, rejected=1),
        last_finish=NOW - 5,
        units=Decimal("42.5"),
    )
    [found] = evaluate(facts(batches=[done]), SETTINGS)
    assert (found.rule, found.subject) == (BATCH_FINISHED, "spring")
    assert found.message.splitlines() == [
        "Batch spring finished: 10 tasks (8 succeed, 1 failed, 1 rejected); 42.5 units.",
        "Dashboard: https://kw.example/batches/spring",
    ]


def test_a_batch_that_ended_before_alerts_watched_is_not_announced() -> None:
    old = BatchFacts("old", counts(succeed=3), last_finish=NOW - 7200)
    assert evaluate(facts(batches=[old], since=NOW - 3600), SETTINGS) == []


def test_without_a_public_url_there_is_no_link() -> None:
    done = BatchFacts("b c", counts(succeed=1), last_finish=NOW)
    [found] = evaluate(facts(batches=[done]), AlertSettings())
    assert "Dashboard" not in found.message
    [linked] = evaluate(facts(batches=[done]), SETTINGS)
    assert "https://kw.example/batches/b%20c" in linked.message
