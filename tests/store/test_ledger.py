"""The Ledger on a real SQLite file and a real PostgreSQL database: intents, the door, reads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from klingwatch.clock import ManualClock
from klingwatch.store import (
    Ledger,
    LocalStatus,
    NewTask,
    Observation,
    Source,
    UnknownTask,
)

S = LocalStatus


def intent(ext: str, **extra: object) -> NewTask:
    return NewTask(
        product="text2video",
        request={"prompt": f"a cat {ext}"},
        external_task_id=ext,
        model="kling-v2-6",
        mode="std",
        **extra,  # type: ignore[arg-type]
    )


def report(status: LocalStatus, source: Source, at: float, **facts: object) -> Observation:
    return Observation(status=status, source=source, at=at, **facts)  # type: ignore[arg-type]


# -- intents -------------------------------------------------------------------------------


def test_added_tasks_are_queued_with_a_creation_event(ledger: Ledger, clock: ManualClock) -> None:
    result = ledger.add_tasks("night", [intent("a", source_line="p.jsonl:1"), intent("b")])
    assert len(result.added) == 2
    assert result.existing == []
    task = ledger.task("a")
    assert task is not None
    assert task.status is S.QUEUED
    assert task.batch == "night"
    assert task.request == {"prompt": "a cat a"}
    assert task.queued_at == clock.time()
    assert task.source_line == "p.jsonl:1"
    [event] = ledger.events(task.local_id)
    assert (event.from_status, event.to_status, event.source) == (None, S.QUEUED, Source.MANUAL)
    assert event.detail == "added from p.jsonl:1"


def test_adding_the_same_external_id_again_never_adds_it_twice(ledger: Ledger) -> None:
    first = ledger.add_tasks("b1", [intent("a"), intent("b")])
    again = ledger.add_tasks("b1", [intent("b"), intent("c"), intent("c")])
    assert again.existing == [first.added[1]]
    assert len(again.added) == 1
    assert len(ledger.tasks()) == 3
    assert sum(len(ledger.events(t.local_id)) for t in ledger.tasks()) == 3


def test_adding_thousands_of_tasks_at_once(ledger: Ledger) -> None:
    result = ledger.add_tasks("big", [intent(f"t{i}") for i in range(1_200)])
    assert len(result.added) == 1_200
    assert ledger.counts(batch="big")[S.QUEUED] == 1_200
    assert [t.external_task_id for t in ledger.queued(limit=3)] == ["t0", "t1", "t2"]


def test_adopting_a_task_created_elsewhere(ledger: Ledger) -> None:
    local_id = ledger.adopt("imported", "text2video", "866889456698785798")
    task = ledger.task("866889456698785798")
    assert task is not None
    assert task.local_id == local_id
    assert task.status is S.SUBMITTED
    assert task.external_task_id == "adopted-866889456698785798"
    assert ledger.adopt("imported", "text2video", "866889456698785798") == local_id
    assert [e.to_status for e in ledger.events(local_id)] == [S.SUBMITTED]


def test_adopting_a_task_klingwatch_sent_itself_returns_the_same_row(ledger: Ledger) -> None:
    [local_id] = ledger.add_tasks("b", [intent("mine")]).added
    ledger.apply(report(S.SUBMITTED, Source.CREATE, 1.0, local_id=local_id, task_id="k1"))
    assert ledger.adopt("other", "text2video", "k1") == local_id


def test_batches_list_their_counts_and_download_dir(ledger: Ledger) -> None:
    ledger.ensure_batch("a", download_dir="/tmp/a")
    ledger.add_tasks("a", [intent("x"), intent("y")])
    ledger.add_tasks("b", [intent("z")])
    ledger.apply(report(S.REJECTED, Source.CREATE, 1.0, external_task_id="y", status_msg="no"))
    batches = {b.name: b for b in ledger.batches()}
    assert batches["a"].download_dir == "/tmp/a"
    assert batches["a"].counts[S.QUEUED] == 1
    assert batches["a"].counts[S.REJECTED] == 1
    assert batches["b"].counts[S.QUEUED] == 1
    assert ledger.ensure_batch("a").download_dir == "/tmp/a"


# -- the one door --------------------------------------------------------------------------


def test_a_whole_lifecycle_leaves_a_timeline(ledger: Ledger) -> None:
    [local_id] = ledger.add_tasks("b", [intent("e1")]).added
    created = 1_767_225_600_000
    steps = [
        report(
            S.SUBMITTED,
            Source.CREATE,
            10.0,
            external_task_id="e1",
            task_id="k1",
            kling_created_ms=created,
            kling_updated_ms=created,
        ),
        report(S.PROCESSING, Source.LIST, 40.0, task_id="k1", kling_updated_ms=created + 20_000),
        report(
            S.SUCCEED,
            Source.CALLBACK,
            130.0,
            task_id="k1",
            kling_updated_ms=created + 110_000,
            result={"videos": [{"id": "v", "url": "https://x/v.mp4"}]},
            units="1.5",
        ),
    ]
    changes = ledger.apply_many(steps)
    assert [(c.old, c.new, c.status_changed) for c in changes] == [
        (S.QUEUED, S.SUBMITTED, True),
        (S.SUBMITTED, S.PROCESSING, True),
        (S.PROCESSING, S.SUCCEED, True),
    ]
    assert {c.local_id for c in changes} == {local_id}
    task = ledger.task(local_id)
    assert task is not None
    assert task.status is S.SUCCEED
    assert task.task_id == "k1"
    assert task.units == "1.5"
    assert task.result == {"videos": [{"id": "v", "url": "https://x/v.mp4"}]}
    assert (task.submitted_at, task.processing_at, task.detected_at) == (10.0, 40.0, 130.0)
    assert task.finished_at == (created + 110_000) / 1000
    assert task.kling_processing_ms == created + 20_000
    timeline = [(e.from_status, e.to_status, e.source) for e in ledger.events(local_id)]
    assert timeline == [
        (None, S.QUEUED, Source.MANUAL),
        (S.QUEUED, S.SUBMITTED, Source.CREATE),
        (S.SUBMITTED, S.PROCESSING, Source.LIST),
        (S.PROCESSING, S.SUCCEED, Source.CALLBACK),
    ]
    assert ledger.verify() == []


def test_repeated_and_late_reports_change_nothing(ledger: Ledger) -> None:
    ledger.add_tasks("b", [intent("e1")])
    done = report(
        S.SUCCEED,
        Source.GET,
        50.0,
        external_task_id="e1",
        task_id="k1",
        kling_updated_ms=9_000,
        result={"videos": []},
    )
    assert ledger.apply(done) is not None
    assert ledger.apply(done) is None
    assert ledger.apply(report(S.PROCESSING, Source.LIST, 60.0, task_id="k1")) is None
    assert ledger.apply(report(S.FAILED, Source.GET, 70.0, task_id="k1")) is None
    task = ledger.task("k1")
    assert task is not None
    assert task.status is S.SUCCEED
    assert len(ledger.events(task.local_id)) == 2


def test_a_fact_only_change_is_reported_without_a_status_change(ledger: Ledger) -> None:
    ledger.add_tasks("b", [intent("e1")])
    ledger.apply(report(S.SUCCEED, Source.LIST, 50.0, external_task_id="e1", kling_updated_ms=9))
    change = ledger.apply(
        report(
            S.SUCCEED,
            Source.GET,
            60.0,
            external_task_id="e1",
            task_id="k1",
            result={"videos": [{"url": "u"}]},
        )
    )
    assert change is not None
    assert change.status_changed is False
    assert change.task_id == "k1"
    task = ledger.task("e1")
    assert task is not None
    assert task.result == {"videos": [{"url": "u"}]}
    assert len(ledger.events(task.local_id)) == 2


def test_recovery_sends_an_unknown_task_back_to_the_queue(ledger: Ledger) -> None:
    [local_id] = ledger.add_tasks("b", [intent("e1")]).added
    ledger.apply(report(S.UNKNOWN, Source.CREATE, 1.0, local_id=local_id, detail="timeout"))
    assert ledger.apply(report(S.QUEUED, Source.GET, 2.0, local_id=local_id)) is None
    change = ledger.apply(report(S.QUEUED, Source.RECOVERY, 3.0, local_id=local_id))
    assert change is not None
    assert (change.old, change.new) == (S.UNKNOWN, S.QUEUED)
    assert [e.detail for e in ledger.events(local_id)][1] == "timeout"
    assert ledger.verify() == []


def test_reports_about_unknown_tasks_are_kept_as_orphans(ledger: Ledger) -> None:
    ledger.add_tasks("b", [intent("e1")])
    assert ledger.apply(report(S.SUCCEED, Source.CALLBACK, 5.0, task_id="stranger")) is None
    orphan = ledger.recent_events(limit=1)[0]
    assert orphan.local_id is None
    assert orphan.to_status is S.SUCCEED
    assert orphan.detail is not None
    assert "stranger" in orphan.detail
    assert ledger.counts()[S.SUCCEED] == 0


def test_an_adopted_task_is_found_by_kling_id_when_its_external_id_differs(
    ledger: Ledger,
) -> None:
    local_id = ledger.adopt("b", "text2video", "k7")
    change = ledger.apply(
        report(S.PROCESSING, Source.LIST, 5.0, external_task_id="their-own-id", task_id="k7")
    )
    assert change is not None
    assert change.local_id == local_id


def test_apply_many_handles_many_tasks_in_one_call(ledger: Ledger) -> None:
    ledger.add_tasks("b", [intent(f"e{i}") for i in range(700)])
    reports = [
        report(S.SUBMITTED, Source.CREATE, 1.0, external_task_id=f"e{i}", task_id=f"k{i}")
        for i in range(700)
    ] + [
        report(S.FAILED, Source.LIST, 2.0, task_id=f"k{i}", status_msg="x")
        for i in range(0, 700, 2)
    ]
    changes = ledger.apply_many(reports)
    assert len(changes) == 700 + 350
    counts = ledger.counts()
    assert (counts[S.SUBMITTED], counts[S.FAILED]) == (350, 350)
    assert ledger.verify() == []


# -- engine support ------------------------------------------------------------------------


def test_due_lists_active_tasks_whose_look_is_due_oldest_first(ledger: Ledger) -> None:
    ids = ledger.add_tasks("b", [intent(f"e{i}") for i in range(5)]).added
    for local_id in ids[:4]:
        ledger.apply(report(S.SUBMITTED, Source.CREATE, 1.0, local_id=local_id))
    ledger.schedule([(ids[0], 500.0), (ids[1], 100.0), (ids[2], 900.0)])
    due = ledger.due(600.0)
    # ids[3] was never looked at (NULL: due first); ids[4] is still queued; ids[2] is not due.
    assert [t.local_id for t in due] == [ids[3], ids[1], ids[0]]
    assert [t.local_id for t in ledger.due(600.0, limit=1)] == [ids[3]]


def test_note_polled_counts_each_poll_once(ledger: Ledger) -> None:
    [a, b] = ledger.add_tasks("b", [intent("a"), intent("b")]).added
    ledger.note_polled([a, a, b], 10.0)
    ledger.note_polled([a], 20.0)
    task_a, task_b = ledger.task(a), ledger.task(b)
    assert task_a is not None
    assert task_b is not None
    assert (task_a.polls, task_a.last_polled_at) == (2, 20.0)
    assert (task_b.polls, task_b.last_polled_at) == (1, 10.0)


def test_mark_sending_counts_attempts_without_changing_the_status(ledger: Ledger) -> None:
    [a] = ledger.add_tasks("b", [intent("a")]).added
    ledger.mark_sending(a, 5.0)
    ledger.mark_sending(a, 9.0)
    task = ledger.task(a)
    assert task is not None
    assert (task.status, task.sent_at, task.send_attempts) == (S.QUEUED, 9.0, 2)
    with pytest.raises(UnknownTask):
        ledger.mark_sending(a + 1000, 1.0)


def test_queued_filters_by_family(ledger: Ledger) -> None:
    ledger.add_tasks("b", [intent("v"), intent("i", family="image", slot_cost=4)])
    assert [t.external_task_id for t in ledger.queued(family="image")] == ["i"]
    assert [t.external_task_id for t in ledger.queued()] == ["v", "i"]


def test_active_count_sums_slot_costs_of_tasks_in_flight(ledger: Ledger) -> None:
    ids = ledger.add_tasks(
        "b", [intent("v1"), intent("v2"), intent("i1", family="image", slot_cost=4), intent("q")]
    ).added
    ledger.apply_many(
        [
            report(S.SUBMITTED, Source.CREATE, 1.0, local_id=ids[0]),
            report(S.UNKNOWN, Source.CREATE, 1.0, local_id=ids[1]),
            report(S.PROCESSING, Source.GET, 1.0, local_id=ids[2]),
        ]
    )
    assert ledger.active_count() == 6
    assert ledger.active_count("image") == 4
    assert ledger.active_count("video") == 2
    ledger.apply(report(S.SUCCEED, Source.GET, 2.0, local_id=ids[2]))
    assert ledger.active_count("image") == 0


def test_stuck_flag_writes_an_event_only_when_it_changes(ledger: Ledger) -> None:
    [a] = ledger.add_tasks("b", [intent("a")]).added
    ledger.apply(report(S.PROCESSING, Source.GET, 1.0, local_id=a))
    assert ledger.set_stuck(a, True, "past p99", 100.0) is True
    assert ledger.set_stuck(a, True, "past p99 by far", 200.0) is False
    assert [t.local_id for t in ledger.tasks(stuck=True)] == [a]
    task = ledger.task(a)
    assert task is not None
    assert task.stuck_reason == "past p99 by far"
    assert ledger.set_stuck(a, False, None, 300.0) is True
    notes = [e for e in ledger.events(a) if e.source is Source.MONITOR]
    assert [(n.from_status, n.to_status, n.detail) for n in notes] == [
        (S.PROCESSING, S.PROCESSING, "stuck: past p99"),
        (S.PROCESSING, S.PROCESSING, "moving again"),
    ]
    assert ledger.verify() == []


def test_a_finished_task_is_never_stuck(ledger: Ledger) -> None:
    [a] = ledger.add_tasks("b", [intent("a")]).added
    ledger.apply(report(S.PROCESSING, Source.GET, 1.0, local_id=a))
    ledger.set_stuck(a, True, "slow", 2.0)
    ledger.apply(report(S.SUCCEED, Source.GET, 3.0, local_id=a))
    task = ledger.task(a)
    assert task is not None
    assert task.stuck is False
    assert ledger.set_stuck(a, True, "slow", 4.0) is False


# -- reads ---------------------------------------------------------------------------------


def test_tasks_filter_and_search(ledger: Ledger) -> None:
    ledger.add_tasks("a", [intent("alpha-1"), intent("alpha-2")])
    ledger.add_tasks("b", [NewTask("image_generation", {"prompt": "a red fox"}, "beta-1")])
    ledger.apply(report(S.FAILED, Source.GET, 1.0, external_task_id="alpha-2", status_msg="nsfw"))
    assert [t.external_task_id for t in ledger.tasks(batch="a")] == ["alpha-1", "alpha-2"]
    assert [t.external_task_id for t in ledger.tasks(status=S.FAILED)] == ["alpha-2"]
    queued_or_failed = ledger.tasks(status=[S.QUEUED, S.FAILED], product="text2video")
    assert len(queued_or_failed) == 2
    assert [t.external_task_id for t in ledger.tasks(search="RED FOX")] == ["beta-1"]
    assert [t.external_task_id for t in ledger.tasks(search="nsfw")] == ["alpha-2"]
    assert [t.external_task_id for t in ledger.tasks(limit=1, offset=1)] == ["alpha-2"]
    assert ledger.tasks(newest_first=True)[0].external_task_id == "beta-1"


def test_task_lookup_by_any_id(ledger: Ledger) -> None:
    [a] = ledger.add_tasks("b", [intent("ext-a")]).added
    ledger.apply(report(S.SUBMITTED, Source.CREATE, 1.0, local_id=a, task_id="866889"))
    for ref in (a, str(a), "ext-a", "866889"):
        found = ledger.task(ref)
        assert found is not None
        assert found.local_id == a
    assert ledger.task("nothing") is None
    assert ledger.task(a + 99) is None


def test_counts_cover_every_status(ledger: Ledger) -> None:
    assert ledger.counts() == dict.fromkeys(LocalStatus, 0)
    assert ledger.counts(batch="no such batch") == dict.fromkeys(LocalStatus, 0)


def test_recent_events_page_forward(ledger: Ledger) -> None:
    ids = ledger.add_tasks("b", [intent(f"e{i}") for i in range(3)]).added
    latest = ledger.recent_events(limit=2)
    assert [e.local_id for e in latest] == ids[1:]
    ledger.apply(report(S.SUBMITTED, Source.CREATE, 1.0, local_id=ids[0]))
    since = ledger.recent_events(after_id=latest[-1].id)
    assert [(e.local_id, e.to_status) for e in since] == [(ids[0], S.SUBMITTED)]


# -- meta, alerts, downloads ---------------------------------------------------------------


def test_meta_values_are_set_replaced_and_deleted(ledger: Ledger) -> None:
    assert ledger.get_meta("paused") is None
    ledger.set_meta("paused", "1102")
    ledger.set_meta("paused", "1101")
    assert ledger.get_meta("paused") == "1101"
    ledger.set_meta("paused", None)
    assert ledger.get_meta("paused") is None


def test_an_alert_raised_twice_is_one_alert_counted_twice(
    ledger: Ledger, clock: ManualClock
) -> None:
    ledger.add_alert("pack", "resource pack exhausted", 10.0)
    ledger.add_alert("pack", "resource pack still exhausted", 20.0)
    ledger.add_alert("stuck", "3 tasks stuck", 15.0)
    [pack, stuck] = ledger.alerts()
    assert (pack.kind, pack.message, pack.at, pack.last_at, pack.count) == (
        "pack",
        "resource pack still exhausted",
        10.0,
        20.0,
        2,
    )
    assert stuck.kind == "stuck"
    ledger.clear_alerts("pack")
    assert [a.kind for a in ledger.alerts()] == ["stuck"]
    ledger.add_alert("pack", "exhausted again", 30.0)
    ledger.clear_alerts()
    assert ledger.alerts() == []
    history = ledger.alerts(active=False)
    assert len(history) == 3
    assert all(a.cleared_at == clock.time() for a in history)


def test_downloads_are_one_row_per_file_replaced_on_retry(ledger: Ledger) -> None:
    [a] = ledger.add_tasks("b", [intent("a")]).added
    common = {"url": "https://x/v.mp4", "sha256": None}
    ledger.record_download(
        a, 0, path=None, size=None, state="failed", error="503", at=1.0, **common
    )
    ledger.record_download(
        a, 1, path="/d/b.mp4", size=5, state="complete", error=None, at=2.0, **common
    )
    ledger.record_download(
        a, 0, path="/d/a.mp4", size=9, state="complete", error=None, at=3.0, **common
    )
    rows = ledger.downloads(a)
    assert [(d.index, d.state, d.path, d.size, d.error) for d in rows] == [
        (0, "complete", "/d/a.mp4", 9, None),
        (1, "complete", "/d/b.mp4", 5, None),
    ]
    assert ledger.downloads() == rows
    with pytest.raises(UnknownTask):
        ledger.record_download(
            a + 5, 0, path=None, size=None, state="failed", error="x", at=1.0, **common
        )


def test_a_complete_download_is_never_downgraded_by_a_later_attempt(ledger: Ledger) -> None:
    [a] = ledger.add_tasks("b", [intent("a")]).added
    common = {"url": "https://x/v.mp4", "sha256": "ab"}
    ledger.record_download(
        a, 0, path="/d/a.mp4", size=9, state="complete", error=None, at=1.0, **common
    )
    for state in ("failed", "expired"):
        ledger.record_download(
            a, 0, path="/elsewhere/a.mp4", size=None, state=state, error="gone", at=2.0, **common
        )
    [row] = ledger.downloads(a)
    assert (row.state, row.path, row.size, row.error, row.at) == (
        "complete",
        "/d/a.mp4",
        9,
        None,
        1.0,
    )
    ledger.record_download(
        a, 0, path="/new/a.mp4", size=9, state="complete", error=None, at=3.0, **common
    )
    assert ledger.downloads(a)[0].path == "/new/a.mp4"  # complete again, somewhere else


def test_paths_are_stored_absolute(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [a] = ledger.add_tasks("b", [intent("a")]).added
    batch = ledger.ensure_batch("b", download_dir="out")
    ledger.record_download(
        a, 0, url="u", path="out/b/a.mp4", size=1, sha256="0", state="complete", error=None, at=1
    )
    monkeypatch.chdir("/")
    assert batch.download_dir == str(tmp_path / "out")
    assert [b.download_dir for b in ledger.batches()] == [str(tmp_path / "out")]
    assert ledger.downloads(a)[0].path == str(tmp_path / "out" / "b" / "a.mp4")


def test_threads_and_a_second_process_writing_at_once_stay_consistent(
    ledger: Ledger, ledger_url: str
) -> None:
    ids = ledger.add_tasks("b", [intent(f"e{i}") for i in range(60)]).added
    errors: list[BaseException] = []

    def walk(who: Ledger, part: list[int]) -> None:
        try:
            for local_id in part:
                for status in (S.SUBMITTED, S.PROCESSING, S.SUCCEED):
                    who.apply(report(status, Source.GET, 1.0, local_id=local_id))
                    who.note_polled([local_id], 1.0)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    with Ledger.open(ledger_url) as other:
        workers = [
            threading.Thread(target=walk, args=(ledger, ids[0::3])),
            threading.Thread(target=walk, args=(ledger, ids[1::3])),
            threading.Thread(target=walk, args=(other, ids[2::3])),
            # A second walker over the same tasks: its reports are all duplicates or stale.
            threading.Thread(target=walk, args=(other, ids[0::3])),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
    assert errors == []
    assert ledger.counts()[S.SUCCEED] == 60
    assert ledger.verify() == []
    assert sum(len(ledger.events(i)) for i in ids) == 60 * 4
