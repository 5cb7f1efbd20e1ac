from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from engine_world import World, failing_reads, world

from klingwatch.kling.errors import AuthenticationError
from klingwatch.monitor.cadence import Cadence
from klingwatch.monitor.poller import Poller, PollSettings
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.sweeps import SweepBudget
from klingwatch.sandbox import Answer, ScriptConfig
from klingwatch.store import LocalStatus, Observation, Source


def poller(w: World, **settings: Any) -> Poller:
    return Poller(
        client=w.client,
        ledger=w.aledger,
        clock=w.clock,
        cadence=Cadence(rng=random.Random(1)),
        settings=PollSettings(**settings),
    )


async def test_few_due_tasks_are_read_twenty_at_a_time_by_id(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(15)
        report = await poller(w).sweep()
        assert report.styles == {"tasks-ids": 1}
        assert report.looked == 15
        assert all(t.polls == 1 for t in w.ledger.tasks())


async def test_many_due_tasks_and_the_just_finished_come_back_in_one_window_read(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await w.submit(120)
        await w.clock.sleep(400)  # by now most have finished on Kling
        before = w.served()
        report = await poller(w).sweep()
        finished = sum(1 for t in w.ledger.tasks() if t.status.is_final)
        # POST /tasks over the tasks' creation window, every status: one request for all 120,
        # the finished ones included (none read again by id).
        assert report.styles == {"tasks-list": 1}
        assert w.served() - before == 1
        assert finished > 60
        assert report.looked == 120
        assert all(
            t.next_look_at is not None for t in w.ledger.tasks(status=LocalStatus.PROCESSING)
        )


async def test_a_window_refused_as_bad_request_falls_back_to_reads_by_id(tmp_path: Path) -> None:
    refusal = Answer.error(1201, "start_time is not supported", status=400).repeated(None)
    async with world(tmp_path, script=ScriptConfig(routes={"POST /tasks": [refusal]})) as w:
        await w.submit(45)
        p = poller(w)
        first = await p.sweep()
        assert first.styles == {"tasks-list": 1, "tasks-ids": 3}
        assert all(t.polls == 1 for t in w.ledger.tasks())
        await w.clock.sleep(60)
        again = await p.sweep()
        assert again.styles == {"tasks-ids": 3}  # the refusal is remembered


async def test_a_window_walk_is_capped_and_what_it_missed_is_read_by_id(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(200)
        await w.clock.sleep(140)  # a few still run, most have finished
        await poller(w).sweep()  # the ledger learns which
        active = [t for t in w.ledger.tasks() if t.status.is_active]
        assert 3 <= len(active) <= 20
        w.ledger.schedule([(t.local_id, w.clock.time()) for t in active])  # all due now
        before = w.served()
        # The window from the oldest active task holds many finished ones too; 2 a page, the
        # walk stops after ceil(active / 2) + 1 pages and the active tasks it did not reach
        # are read by id (1 a request here).
        report = await poller(w, page_size=2, many_size=1).sweep()
        pages = -(-len(active) // 2) + 1
        assert report.styles["tasks-list"] == pages
        assert report.styles["tasks-ids"] >= len(active) - 2 * pages
        assert w.served() - before == report.requests
        assert all(w.ledger.task(t.local_id).polls == 2 for t in active)  # type: ignore[union-attr]


async def test_one_due_task_with_ak_sk_is_one_single_get(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False) as w:
        await w.submit(1)
        report = await poller(w).sweep()
        assert report.styles == {"get": 1}
        assert w.ledger.tasks()[0].polls == 1


async def test_due_tasks_on_the_first_legacy_page_cost_one_request(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False) as w:
        await w.submit(80)
        report = await poller(w).sweep()
        assert report.styles == {"legacy-page": 1}
        assert report.looked == 80


async def test_the_page_walk_stops_at_the_oldest_due_task(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False) as w:
        old = await w.submit(5, prefix="old")
        await w.submit(95, prefix="new")
        w.ledger.schedule((i, w.clock.time() + 10_000) for i in range(1, 101) if i not in old)
        report = await poller(w, page_size=20).sweep()
        # 100 tasks newest first, 20 a page: the five oldest are on page 5, nothing beyond.
        assert report.styles == {"legacy-page": 5}
        assert {t.local_id for t in w.ledger.tasks() if t.polls} >= set(old)


async def test_the_page_walk_stops_once_pages_are_older_than_every_unfound_task(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, api_key=False) as w:
        await w.submit(60)
        w.ledger.ensure_batch("b1")
        # Two tasks Kling does not list (unknown ids), newer than everything on page 1.
        ghosts = [w.ledger.adopt("b1", "text2video", f"99999999999999999{n}") for n in (1, 2)]
        w.ledger.schedule((i, w.clock.time() + 10_000) for i in range(1, 61))
        report = await poller(w, page_size=20).sweep()
        assert report.styles == {"legacy-page": 1, "get": 2}
        assert all(w.ledger.task(i).polls == 1 for i in ghosts)  # type: ignore[union-attr]


async def test_the_page_walk_is_capped_and_the_rest_read_singly(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False) as w:
        old = await w.submit(3, prefix="old")
        await w.submit(97, prefix="new")
        w.ledger.schedule((i, w.clock.time() + 10_000) for i in range(1, 101) if i not in old)
        report = await poller(w, page_size=20, max_pages=2).sweep()
        assert report.styles == {"legacy-page": 2, "get": 3}
        assert all(w.ledger.task(i).polls == 1 for i in old)  # type: ignore[union-attr]


async def test_a_task_kling_does_not_know_is_flagged_never_given_a_status(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.ledger.ensure_batch("b1")
        ghost = w.ledger.adopt("b1", "text2video", "123456789012345678")
        p = poller(w, not_found_grace=300)
        await p.sweep()
        task = w.ledger.task(ghost)
        assert task is not None
        assert task.status is LocalStatus.SUBMITTED
        assert not task.stuck  # young: Kling may not list it yet
        await w.clock.sleep(600)
        await p.sweep()
        task = w.ledger.task(ghost)
        assert task is not None
        assert task.status is LocalStatus.SUBMITTED
        assert task.stuck
        assert "not found" in (task.stuck_reason or "")
        assert task.next_look_at is not None  # still watched


@pytest.mark.parametrize("api_key", [True, False])
async def test_a_lost_create_answer_is_recovered_by_external_id(
    tmp_path: Path, api_key: bool
) -> None:
    async with world(tmp_path, api_key=api_key) as w:
        [local_id] = await w.submit(1)
        # Pretend the create answer never arrived: the ledger knows only that it was sent.
        w.ledger.ensure_batch("b2")
        [lost] = w.ledger.add_tasks("b2", [_intent("t0-lost")]).added
        w.ledger.mark_sending(lost, w.clock.time())
        await w.client.create("text2video", _REQUEST, external_task_id="t0-lost")
        w.ledger.apply(
            Observation(LocalStatus.UNKNOWN, Source.CREATE, w.clock.time(), local_id=lost)
        )
        # The poller leaves it to recovery (one implementation, shared with the submitter),
        # which the engine runs as a worker when there is no submitter.
        report = await poller(w).sweep()
        assert report.looked == 2
        assert w.ledger.task(lost).status is LocalStatus.UNKNOWN  # type: ignore[union-attr]
        monitor = Monitor(client=w.client, ledger=w.aledger, handle_signals=False)
        await w.clock.sleep(10)  # past the lookup delay: a create may still be landing
        await monitor.run_once()
        task = w.ledger.task(lost)
        assert task is not None
        assert task.status is LocalStatus.SUBMITTED
        assert task.task_id is not None
        assert [e.source for e in w.ledger.events(lost)][-1] is Source.RECOVERY
        assert local_id != lost


async def test_an_unknown_task_kling_never_got_goes_back_to_the_queue(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.ledger.ensure_batch("b1")
        [lost] = w.ledger.add_tasks("b1", [_intent("never-arrived")]).added
        w.ledger.mark_sending(lost, w.clock.time())
        w.ledger.apply(
            Observation(LocalStatus.UNKNOWN, Source.CREATE, w.clock.time(), local_id=lost)
        )
        monitor = Monitor(client=w.client, ledger=w.aledger, handle_signals=False)
        await w.clock.sleep(10)
        await monitor.run_once()  # "not found" 10 s after sending is not believed yet
        assert w.ledger.task(lost).status is LocalStatus.UNKNOWN  # type: ignore[union-attr]
        await w.clock.sleep(60)
        await monitor.run_once()
        assert w.ledger.task(lost).status is LocalStatus.QUEUED  # type: ignore[union-attr]


async def test_failed_reads_change_nothing_and_are_tried_again_later(tmp_path: Path) -> None:
    async with world(tmp_path, script=failing_reads(503, 5001)) as w:
        w.ledger.ensure_batch("b1")
        local_id = w.ledger.adopt("b1", "text2video", "123456789012345678")
        report = await poller(w).sweep()
        task = w.ledger.task(local_id)
        assert task is not None
        assert report.errors == 1
        assert task.status is LocalStatus.SUBMITTED
        assert task.next_look_at is not None
        assert task.next_look_at > w.clock.time()  # later, not again at once


async def test_bad_credentials_stop_the_sweep_with_a_clear_error(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False, script=failing_reads(401, 1002)) as w:
        w.ledger.ensure_batch("b1")
        w.ledger.adopt("b1", "text2video", "123456789012345678")
        with pytest.raises(AuthenticationError, match="credentials"):
            await poller(w).sweep()


_REQUEST = {"prompt": "a cat surfing", "model_name": "kling-v2-6", "mode": "std"}


def _intent(external_id: str) -> Any:
    from klingwatch.store import NewTask

    return NewTask(product="text2video", request=_REQUEST, external_task_id=external_id)


async def test_tasks_due_within_seconds_of_each_other_are_read_together(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        ids = await w.submit(20)
        now = w.clock.time()
        w.ledger.schedule((local_id, now + 0.1 * n) for n, local_id in enumerate(ids))
        p = poller(w, coalesce=3.0)
        report = await p.sweep()
        assert report.styles == {"tasks-ids": 1}
        assert report.looked == 20
        assert await p.next_due() == min(t.next_look_at or 0 for t in w.ledger.tasks())


async def test_the_next_due_look_survives_a_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        ids = await w.submit(3)
        soon = w.clock.time() + 42
        w.ledger.schedule((local_id, soon + n) for n, local_id in enumerate(ids))
        assert await poller(w).next_due() == soon  # a new poller reads it from the ledger


async def test_with_an_owner_due_tasks_are_leased_to_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.submit(5)
        await poller(w, owner="replica-a").sweep()
        assert {t.lease_owner for t in w.ledger.tasks()} == {"replica-a"}
        # Another replica skips what replica-a holds, even once it comes due again.
        await w.clock.sleep(10)
        report = await poller(w, owner="replica-b", coalesce=0).sweep()
        assert report.due == 0


async def test_oldest_first_pages_are_walked_without_the_age_shortcut(tmp_path: Path) -> None:
    from engine_world import CONFIG

    oldest_first = CONFIG.model_copy(update={"list_order": "oldest"})
    async with world(tmp_path, api_key=False, config=oldest_first) as w:
        await w.submit(30, prefix="old")
        await w.clock.sleep(1)
        new = await w.submit(10, prefix="new")
        w.ledger.schedule((i, w.clock.time() + 10_000) for i in range(1, 41) if i not in new)
        report = await poller(w, page_size=10).sweep()
        # The ten newest are on the 4th page of an oldest-first list; no single gets needed.
        assert report.styles == {"legacy-page": 4}
        assert all(w.ledger.task(i).polls == 1 for i in new)  # type: ignore[union-attr]


@pytest.mark.parametrize("api_key", [True, False], ids=["api-key", "ak-sk"])
async def test_batched_sweeps_run_when_a_task_is_worth_a_look_and_read_every_active_task(
    tmp_path: Path, api_key: bool
) -> None:
    async with world(tmp_path, api_key=api_key) as w:
        await w.submit(40)
        started, before = w.clock.time(), w.served()
        budget = SweepBudget(base=5.0)
        monitor = w.monitor(until_done=True, poll=PollSettings(sweep=budget), rng=random.Random(3))
        await monitor.run()
        tasks = sorted(w.ledger.tasks(), key=lambda t: t.finished_at or 0)
        assert all(t.status.is_final for t in tasks)
        # Every finish is seen within one dense look of the cadence (10 % of the p50, at most
        # 10 s, +10 % jitter) of Kling's update time (the last task, alone in flight, follows its
        # own cadence: each look at it is a request of its own) ...
        lags = [t.detected_at - t.finished_at for t in tasks[:-1]]  # type: ignore[operator]
        assert max(lags) <= 11.0 + 1e-6
        # ... for about one request per dense look while finishes are due, and none before the
        # first task's finish window opens: far fewer than a sweep every 5 s over the run.
        reads = w.served() - before
        assert reads <= (w.clock.time() - started) / 6.5
        assert reads < len(tasks)


async def test_no_sweep_runs_while_every_task_is_far_from_its_finish(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False) as w:
        await w.submit(30)
        p = poller(w)
        first = await p.sweep()  # the first look (content checks fail tasks within seconds)
        assert first.requests == 1
        # Until the earliest finish window opens (0.6 of the cold start's p50 of 85 s), the
        # cadence's sparse looks are the only sweeps: a handful, not one every few seconds.
        sweeps, began = 0, w.clock.time()
        while w.clock.time() < began + 50:
            await w.clock.sleep(1)
            sweeps += (await p.sweep()).requests
        assert 1 <= sweeps <= 4


async def test_a_sweep_for_one_due_task_reads_the_others_on_the_same_request(
    tmp_path: Path,
) -> None:
    for api_key, style in ((True, "tasks-list"), (False, "legacy-page")):
        (tmp_path / style).mkdir()
        async with world(tmp_path / style, api_key=api_key) as w:
            await w.submit(10)
            await poller(w).sweep()
            now = w.clock.time()
            first, *others = w.ledger.tasks()
            # Only the first is due; the others not for a while.
            w.ledger.schedule([(first.local_id, now), *((t.local_id, now + 100) for t in others)])
            report = await poller(w).sweep()
            assert report.styles == {style: 1}
            assert all(t.polls == 2 for t in w.ledger.tasks())  # all ten read by that request


HOOK = "https://klingwatch.example/callbacks/kling/token"


async def test_while_callbacks_arrive_only_tasks_without_one_or_overdue_ones_are_read(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        hooked = await w.submit(10, callback_url=HOOK, prefix="hooked")
        plain = await w.submit(10, prefix="plain")
        p = poller(w)
        p.heard_callback()
        first = await p.sweep()
        polls = {t.local_id: t.polls for t in w.ledger.tasks()}
        assert first.styles == {"tasks-ids": 1}  # the ten without a callback URL, one request
        assert all(polls[i] == 1 for i in plain)
        assert all(polls[i] == 0 for i in hooked)
        # Each hooked task waits, unread, until its final callback would be overdue: the cold
        # start's queue + run p95 (30 + 120 s for text2video std) plus the 30 s margin.
        now = w.clock.time()
        waits = [t.next_look_at - now for t in w.ledger.tasks() if t.local_id in hooked]  # type: ignore[operator]
        assert all(179 <= wait <= 180 for wait in waits)
        # Past that, a task whose callback never came is read (the safety net) ...
        await w.clock.sleep(185)
        p.heard_callback()  # ... even while other callbacks keep arriving
        await p.sweep()
        assert all(w.ledger.task(i).polls == 1 for i in hooked)  # type: ignore[union-attr]


async def test_when_callbacks_stop_arriving_every_active_task_is_polled_again(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        hooked = await w.submit(10, callback_url=HOOK)
        p = poller(w, callback_quiet=60.0)
        await w.clock.sleep(61)  # a minute without a single callback since the poller began
        assert not p.callbacks_arriving(w.clock.time())
        await p.sweep()
        assert all(w.ledger.task(i).polls == 1 for i in hooked)  # type: ignore[union-attr]


async def test_a_list_page_read_parses_only_the_tasks_asked_for(tmp_path: Path) -> None:
    async with world(tmp_path, api_key=False) as w:
        await w.submit(30)
        wanted = {t.task_id or "" for t in w.ledger.tasks()[:5]}
        page = await w.client.list_page_of("text2video", wanted, size=500)
        assert {t.id for t in page.tasks} == wanted
        # The page's length and creation times still tell whether to walk on.
        assert page.size == 30
        assert page.created_ms == sorted(page.created_ms, reverse=True)
        assert len(page.created_ms) == 30
