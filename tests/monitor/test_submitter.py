"""The submitter: slots, every create answer, recovery, restarts, replicas. No task paid twice."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from submit_world import (
    API_KEY,
    BASE,
    SandboxWorld,
    all_final,
    intents,
    sandbox_config,
    sandbox_world,
    scripted_config,
)

from klingwatch.kling.client import KlingClient
from klingwatch.kling.outcomes import MAX_CREATE_SENDS
from klingwatch.kling.products import Family
from klingwatch.kling.retry import RetryPolicy
from klingwatch.monitor import gates
from klingwatch.monitor.create_policy import GIVE_UP_ALERT
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.submitter import Submitter
from klingwatch.sandbox import Answer, ChaosConfig, SandboxTransport
from klingwatch.store import Ledger, LocalStatus, NewTask, Source
from klingwatch.store.async_ledger import AsyncLedger


def slot_use(timeline: list[list[int]], limit: int) -> float:
    """Slot utilisation while work was queued (from the first create to the last one): busy
    slot-seconds over available slot-seconds, from the sandbox's ``[time ms, in use]`` timeline."""
    start = timeline[0][0]
    end = max(t for (_, before), (t, level) in itertools.pairwise(timeline) if level > before)
    busy = 0
    for (t0, level), (t1, _) in itertools.pairwise(timeline):
        if t0 >= end:
            break
        busy += min(level, limit) * (min(t1, end) - t0)
    return busy / ((end - start) * limit)


# -- slots -------------------------------------------------------------------------------------
async def test_never_more_in_flight_than_the_slot_setting_and_the_slots_stay_busy(
    tmp_path: Path,
) -> None:
    # Realistic durations (about 10 s queued, 75 s running): the slot use figure depends on
    # how long a task holds its slot compared with how soon its end is seen.
    async with sandbox_world(tmp_path, sandbox_config(3, durations={})) as w:
        w.queue(intents(18))
        submitter = w.submitter(slots={"video": 3})
        await w.monitor(submitter).run()
        assert all_final(w.ledger)
        slots = await w.truth("/sandbox/slots")
        assert slots["peak"]["video"] == 3
        assert not w.refusals()  # not a single 1303
        assert set(w.creates_seen().values()) == {1}
        assert len(w.creates_seen()) == 18
        # While work was queued, the slots were busy (a freed one is refilled within seconds).
        assert slot_use(slots["timeline"]["video"], 3) >= 0.95


async def test_the_slot_limit_is_learned_from_one_1303_kept_and_never_exceeded(
    tmp_path: Path,
) -> None:
    async with sandbox_world(tmp_path, sandbox_config(4)) as w:
        w.queue(intents(40))
        submitter = w.submitter()
        assert await submitter.slot_limit("video") is None
        await w.monitor(submitter).run()
        assert all_final(w.ledger)
        assert await submitter.slot_limit("video") == 4
        assert w.ledger.get_meta("slots.video") == "4"
        refused = w.refusals()[1303]
        assert refused == 1  # the one that taught the limit; none of the 40 creates after it
        assert (await w.truth("/sandbox/slots"))["peak"]["video"] == 4
        # Every line is exactly one Kling task (the 1303'd create made none).
        assert set((await w.tasks_per_external_id()).values()) == {1}
        # A new process on the same ledger starts from the learned limit.
        assert (await w.submitter().slot_limit("video")) == 4


async def test_a_lower_slot_setting_wins_over_the_learned_limit(tmp_path: Path) -> None:
    async with sandbox_world(tmp_path, sandbox_config(4)) as w:
        w.ledger.set_meta("slots.video", "4")
        w.queue(intents(10))
        submitter = w.submitter(slots={"video": 2})
        assert await submitter.slot_limit("video") == 2
        await submitter.run_once()
        assert w.ledger.active_count("video") == 2


# -- ambiguous creates -------------------------------------------------------------------------
async def test_created_then_5000_answers_still_make_exactly_one_task_per_line(
    tmp_path: Path,
) -> None:
    chaos = ChaosConfig(created_then_5000=0.3)
    async with sandbox_world(tmp_path, sandbox_config(3, chaos=chaos)) as w:
        w.queue(intents(30))
        submitter = w.submitter(slots={"video": 3})
        await w.monitor(submitter).run()
        assert all_final(w.ledger)
        # The chaos really hit (about 9 of 30 on average; the draws depend on unseeded jitter,
        # so only "it happened" is certain: fewer than 5 hits happens in ~3% of runs).
        assert submitter.stats.ambiguous >= 1
        assert submitter.stats.found >= 1
        per_line = await w.tasks_per_external_id()
        assert len(per_line) == 30
        assert set(per_line.values()) == {1}
        assert set(w.creates_seen().values()) == {1}  # no create was ever sent twice
        for task in w.ledger.tasks():
            truth = await w.truth(f"/sandbox/tasks/{task.external_task_id}")
            assert task.task_id == truth["task_id"]
            assert task.status.value == truth["status"]


# -- restarts: the crux of "never pay twice" ----------------------------------------------------
async def test_a_create_that_landed_before_the_process_died_is_found_not_resent(
    tmp_path: Path, ledger_url: str
) -> None:
    async with sandbox_world(tmp_path, sandbox_config(3), url=ledger_url) as w:
        [local_id] = w.queue(intents(1))
        # The old process: leased, marked sending, the create reached Kling... then SIGKILL.
        [task] = w.ledger.claim_queued(
            w.clock.time(), owner="dead-process", lease_seconds=120, limit=1
        )
        w.ledger.mark_sending(local_id, w.clock.time())
        created = await w.client.create("text2video", task.request, external_task_id="line-0")
        fresh = w.submitter(slots={"video": 3})
        await fresh.run_once()
        # While the dead process's lease runs, its task is left alone (it may still be sending).
        assert w.ledger.task(local_id).status is LocalStatus.QUEUED  # type: ignore[union-attr]
        w.clock.advance(121)
        await fresh.run_once()  # now it is taken: turned unknown, to be looked up
        assert w.ledger.task(local_id).status is LocalStatus.UNKNOWN  # type: ignore[union-attr]
        await fresh.run_once()
        record = w.ledger.task(local_id)
        assert record is not None
        truth = await w.truth("/sandbox/tasks/line-0")
        assert record.task_id == created.id == truth["task_id"]
        assert record.status.value == truth["status"]
        assert fresh.stats.orphans == 1
        assert fresh.stats.creates == 0
        assert w.creates_seen()["line-0"] == 1
        timeline = [(e.to_status, e.source) for e in w.ledger.events(local_id)]
        assert timeline == [
            (LocalStatus.QUEUED, Source.MANUAL),
            (LocalStatus.UNKNOWN, Source.RECOVERY),
            (record.status, Source.RECOVERY),
        ]


async def test_a_create_that_never_left_is_looked_up_then_sent_once(
    tmp_path: Path, ledger_url: str
) -> None:
    async with sandbox_world(tmp_path, sandbox_config(3), url=ledger_url) as w:
        [local_id] = w.queue(intents(1))
        w.ledger.mark_sending(local_id, w.clock.time())  # died before the request left
        fresh = w.submitter(slots={"video": 3})
        for _ in range(3):
            await fresh.run_once()
            w.clock.advance(9)
        # Kling may not show a task it created a moment ago: "not found" is not believed yet.
        assert w.ledger.task(local_id).status is LocalStatus.UNKNOWN  # type: ignore[union-attr]
        assert w.creates_seen()["line-0"] == 0
        for _ in range(2):
            await fresh.run_once()
            w.clock.advance(9)
        record = w.ledger.task(local_id)
        assert record is not None
        assert record.status is LocalStatus.SUBMITTED
        assert record.send_attempts == 2
        assert w.creates_seen()["line-0"] == 1
        assert fresh.stats.orphans == 1
        assert fresh.stats.not_found == 1


@pytest.mark.parametrize("api_key", [True, False], ids=["tasks-lookup", "legacy-lookup"])
async def test_no_create_is_ever_sent_for_an_unknown_task(tmp_path: Path, api_key: bool) -> None:
    config, once = scripted_config(), RetryPolicy(attempts=1)
    async with sandbox_world(tmp_path, config, api_key=api_key, retry=once) as w:
        w.queue(intents(1))
        w.script.on_create("line-0", "timeout")  # no answer: created or not, nobody knows
        w.script.on_read("line-0", Answer.error(5000), times=None)  # and lookups fail
        submitter = w.submitter(slots={"video": 5})
        for _ in range(20):
            await submitter.run_once()
            w.clock.advance(60)
        assert w.status("line-0") is LocalStatus.UNKNOWN
        assert w.creates_seen()["line-0"] == 1
        assert w.lookups_seen()["line-0"] >= 5  # it keeps trying, with backoff
        # Once Kling answers lookups again, the task is sent: it never existed.
        w.script.clear()
        for _ in range(3):
            await submitter.run_once()
            w.clock.advance(60)
        assert w.status("line-0") is LocalStatus.SUBMITTED
        assert w.creates_seen()["line-0"] == 2
        assert len(w.sandbox.state.tasks) == 1


async def test_lookups_fall_back_to_single_gets_when_the_server_refuses_tasks(
    world: SandboxWorld,
) -> None:
    world.queue(intents(2))
    world.script.on_create("line-0", "created-then-500")
    world.script.on_create("line-1", "timeout")
    for route in ("GET /tasks", "POST /tasks"):  # a server without the 2026 API
        world.script.on_route(route, Answer.error(1202, "Invalid request"), times=None)
    await _run(world, passes=4, step=10)
    assert world.status("line-0") is LocalStatus.SUBMITTED  # found: not sent again
    assert world.creates_seen()["line-0"] == 1
    assert world.status("line-1") is LocalStatus.SUBMITTED  # not found: sent again
    assert world.creates_seen()["line-1"] == 2
    assert world.lookups_seen()["line-1"] >= 1
    assert not world.client.tasks_api


async def test_a_refusal_seen_here_does_not_cover_a_later_send_by_another_replica(
    world: SandboxWorld,
) -> None:
    [local_id] = world.queue(intents(1))
    world.script.on_create("line-0", Answer.error(1303))
    here = world.submitter(owner="here")
    await here.run_once()  # 1303 with nothing in flight: not created, known here
    assert world.creates_seen()["line-0"] == 1
    # Another replica takes it, sends it (Kling creates it), and dies before the answer.
    [task] = world.ledger.claim_queued(world.clock.time(), owner="there", lease_seconds=60, limit=1)
    world.ledger.mark_sending(local_id, world.clock.time())
    made = await world.client.create("text2video", task.request, external_task_id="line-0")
    for _ in range(6):
        world.clock.advance(30)
        await here.run_once()
    assert world.creates_seen()["line-0"] == 2  # one here, one there: looked up, never again
    assert world.status("line-0") is LocalStatus.SUBMITTED
    record = world.ledger.task(local_id)
    assert record is not None
    assert record.task_id == made.id


# -- every create answer -------------------------------------------------------------------------
async def _run(w: SandboxWorld, passes: int, step: float = 5.0, **kw: object) -> Submitter:
    submitter = w.submitter(**kw)
    for _ in range(passes):
        await submitter.run_once()
        w.clock.advance(step)
    return submitter


@pytest.fixture
async def world(tmp_path: Path, ledger_url: str) -> AsyncIterator[SandboxWorld]:
    """The sandbox, ready to be scripted, on a ledger in SQLite and in PostgreSQL; reads are
    not retried, so each lookup is one request."""
    config, once = scripted_config(), RetryPolicy(attempts=1)
    async with sandbox_world(tmp_path, config, url=ledger_url, retry=once) as w:
        yield w


async def test_content_policy_and_bad_parameters_are_rejected_and_never_resent(
    world: SandboxWorld,
) -> None:
    world.queue(intents(3))
    world.script.on_create("line-0", Answer.error(1301, "refused"))
    world.script.on_create("line-1", Answer.error(1200, "refused"))
    world.script.on_create("line-2", Answer.error(1203, "refused", status=404))
    await _run(world, passes=5, slots={"video": 5})
    for ext in ("line-0", "line-1", "line-2"):
        record = world.ledger.task(ext)
        assert record is not None
        assert record.status is LocalStatus.REJECTED
        assert record.status_msg == "refused"
        assert world.creates_seen()[ext] == 1
    assert world.refusals() == Counter({1301: 1, 1200: 1, 1203: 1})


async def test_a_duplicate_external_id_answer_is_looked_up_not_rejected(
    world: SandboxWorld,
) -> None:
    [intent] = intents(1)
    world.queue([intent])
    # Created earlier by a process whose answer was lost: the sandbox refuses the resend as a
    # duplicate (400/1201 "already exists"), as Kling does.
    made = await world.client.create("text2video", intent.request, external_task_id="line-0")
    await _run(world, passes=4)
    record = world.ledger.task("line-0")
    assert record is not None
    assert record.status is LocalStatus.SUBMITTED
    assert record.task_id == made.id
    assert world.refusals() == Counter({1201: 1})


async def test_a_permanent_refusal_that_looks_ambiguous_is_given_up_after_the_send_cap(
    world: SandboxWorld,
) -> None:
    # Seen in the field: a 1201 whose message mentions the external id, for a task that does
    # not exist. Each answer looks like "already created", each lookup finds nothing, and
    # without a cap the task was paid for (and refused) again every half minute, forever.
    world.queue(intents(2))
    refusal = Answer.error(1201, "external_task_id 'line-0' already exists")
    world.script.on_create("line-0", refusal, times=20)
    submitter = await _run(world, passes=40, step=30)
    record = world.ledger.task("line-0")
    assert record is not None
    assert record.status is LocalStatus.REJECTED
    assert "not sending it again" in (record.status_msg or "")
    assert world.creates_seen()["line-0"] == MAX_CREATE_SENDS
    assert submitter.stats.given_up == 1
    [alert] = [a for a in world.ledger.alerts() if a.kind == GIVE_UP_ALERT]
    assert "line-0" in alert.message
    assert world.status("line-1") is LocalStatus.SUBMITTED  # the others carry on


async def test_sends_a_killed_process_never_saw_answered_do_not_count_towards_the_cap(
    world: SandboxWorld,
) -> None:
    [local_id] = world.queue(intents(1))
    for _ in range(MAX_CREATE_SENDS + 1):  # killed mid-send, again and again: nothing left
        world.ledger.mark_sending(local_id, world.clock.time())
        fresh = world.submitter()
        for _ in range(3):
            world.clock.advance(60)
            await fresh.recovery.run()
            await fresh._adopt_orphans()
    await _run(world, passes=3, step=30)
    assert world.status("line-0") is LocalStatus.SUBMITTED
    assert world.creates_seen()["line-0"] == 1


async def test_pack_exhausted_pauses_everything_with_an_alert_until_resumed(
    tmp_path: Path,
) -> None:
    # 1.5 units per 5 s std video: the third create answers 1102.
    config = sandbox_config(5, unit_budget=Decimal(3), failure_rate=0.0)
    async with sandbox_world(tmp_path, config) as w:
        w.queue(intents(6))
        submitter = w.submitter(slots={"video": 5})
        for _ in range(5):
            await submitter.run_once()
            w.clock.advance(30)
        assert w.refusals()[1102] == 1  # paused at once: no second attempt
        assert submitter.stats.creates == 3
        state = gates.pause_state(w.ledger)
        assert state is not None
        assert state.code == 1102
        [alert] = w.ledger.alerts()
        assert alert.kind == gates.PAUSE_ALERT
        assert "1102" in alert.message
        assert "klingwatch resume" in alert.message
        counts = w.ledger.counts()
        assert counts[LocalStatus.QUEUED] == 4  # nothing lost
        assert gates.resume(w.ledger) == state
        assert w.ledger.alerts() == []
        await submitter.run_once()
        assert submitter.stats.creates == 4  # it tried again (and paused again: still empty)
        assert gates.pause_state(w.ledger) is not None


async def test_a_1102_pause_may_lift_by_itself_after_a_delay(world: SandboxWorld) -> None:
    world.queue(intents(2))
    world.script.on_create("line-0", Answer.error(1102, "Account balance not enough"))
    submitter = world.submitter(resume_after_1102=600)
    await submitter.run_once()
    assert (await submitter.paused()) is not None
    world.clock.advance(599)
    await submitter.run_once()
    assert world.creates_seen()["line-0"] == 1
    world.clock.advance(2)
    await submitter.run_once()
    assert (await submitter.paused()) is None
    assert world.status("line-0") is LocalStatus.SUBMITTED
    assert world.status("line-1") is LocalStatus.SUBMITTED


@pytest.mark.parametrize("code", [1100, 1101, 1103, 1304, 1002])
async def test_account_and_credential_refusals_pause_without_auto_resume(
    world: SandboxWorld, code: int
) -> None:
    world.queue(intents(2))
    status = {1103: 403, 1002: 401}.get(code, 429)
    world.script.on_create("line-0", Answer.error(code, "refused", status=status))
    submitter = await _run(world, passes=3, step=3600, resume_after_1102=1)
    state = await submitter.paused()
    assert state is not None
    assert state.code == code
    assert state.resume_at is None
    assert sum(world.creates_seen().values()) == 1
    assert world.ledger.counts()[LocalStatus.QUEUED] == 2


def _json(payload: object) -> bytes:
    return json.dumps(payload).encode()


REFUSALS = {
    "401 envelope": Answer.raw(401, _json({"code": 1000, "message": "auth failed"})),
    "401 unknown code": Answer.raw(401, _json({"code": 1099, "message": "no"})),
    "403 envelope": Answer.raw(403, _json({"code": 1103, "message": "no permission"})),
    "401 empty": Answer.raw(401, b"", content_type=""),
    "401 json without code": Answer.raw(401, _json({"error": "unauthorized"})),
    "403 proxy page": Answer.raw(
        403, "<html><h1>403 Forbidden</h1></html>", content_type="text/html"
    ),
}


@pytest.mark.parametrize("answer", list(REFUSALS), ids=list(REFUSALS))
async def test_a_create_answered_401_or_403_was_not_created_and_waits_for_no_lookup(
    world: SandboxWorld, answer: str
) -> None:
    # Kling (or a proxy in front of it) refused the request: whatever the body, no task exists,
    # so nothing is looked up or held back as "unknown"; sending pauses until the cause is fixed.
    world.queue(intents(2))
    world.script.on_create("line-0", REFUSALS[answer])
    submitter = await _run(world, passes=3, step=60)
    assert world.status("line-0") is LocalStatus.QUEUED
    assert submitter.stats.ambiguous == 0
    assert sum(world.lookups_seen().values()) == 0
    assert sum(world.creates_seen().values()) == 1
    state = await submitter.paused()
    assert state is not None
    assert ("401" in state.reason) or ("403" in state.reason)
    assert world.ledger.counts()[LocalStatus.UNKNOWN] == 0


async def test_a_rate_limit_keeps_the_task_queued_and_honours_retry_after(
    world: SandboxWorld,
) -> None:
    world.queue(intents(1))
    world.script.on_create("line-0", Answer.error(1302, headers={"Retry-After": "90"}))
    submitter = world.submitter()
    await submitter.run_once()
    assert world.status("line-0") is LocalStatus.QUEUED
    world.clock.advance(80)
    await submitter.run_once()
    assert world.creates_seen()["line-0"] == 1  # not before Retry-After
    world.clock.advance(15)
    await submitter.run_once()
    assert world.creates_seen()["line-0"] == 2
    assert world.status("line-0") is LocalStatus.SUBMITTED
    assert submitter.stats.orphans == 0  # a refusal it saw needs no lookup


async def test_maintenance_is_retried_with_backoff_and_without_a_lookup(
    world: SandboxWorld,
) -> None:
    world.queue(intents(1))
    world.script.on_create("line-0", Answer.error(5001), times=2)
    await _run(world, passes=30, step=1)
    assert world.status("line-0") is LocalStatus.SUBMITTED
    assert world.creates_seen()["line-0"] == 3
    assert world.lookups_seen()["line-0"] == 0


async def test_a_1303_with_nothing_in_flight_teaches_nothing_and_backs_off(
    world: SandboxWorld,
) -> None:
    world.queue(intents(1))
    world.script.on_create("line-0", Answer.error(1303))
    submitter = await _run(world, passes=10, step=1)
    assert await submitter.slot_limit("video") is None
    assert world.status("line-0") is LocalStatus.SUBMITTED
    assert world.creates_seen()["line-0"] == 2


async def test_every_create_carries_the_external_id_and_callback_url(world: SandboxWorld) -> None:
    hook = "https://hooks.example/kling?token=t"
    intent = NewTask(
        product="text2video",
        request={"prompt": "a fox"},
        external_task_id="cb-1",
        callback_url=hook,
    )
    world.queue([intent])
    await _run(world, passes=1)
    truth = await world.truth("/sandbox/tasks/cb-1")
    assert (truth["request"], truth["external_task_id"], truth["callback_url"]) == (
        {"prompt": "a fox"},
        "cb-1",
        hook,
    )
    assert world.creates_seen() == Counter({"cb-1": 1})


# -- replicas ------------------------------------------------------------------------------------
async def test_two_replicas_on_one_ledger_never_send_the_same_task(
    tmp_path: Path, ledger_url: str
) -> None:
    chaos = ChaosConfig(latency_ms=1.0)  # every answer yields, so the replicas interleave
    async with sandbox_world(tmp_path, sandbox_config(50, chaos=chaos), url=ledger_url) as w:
        w.queue(intents(30))
        other_ledger = Ledger.open(w.db_url, clock=w.clock)
        try:
            a = w.submitter(owner="replica-a", slots={"video": 50})
            b = Submitter(
                client=w.client,
                ledger=AsyncLedger(other_ledger),
                clock=w.clock,
                owner="replica-b",
                slots={"video": 50},
            )
            await asyncio.gather(a.run_once(), b.run_once())
        finally:
            other_ledger.close()
        assert a.stats.creates + b.stats.creates == 30
        assert a.stats.creates > 0
        assert b.stats.creates > 0
        assert set(w.creates_seen().values()) == {1}


async def test_the_engine_wakes_when_a_backoff_ends_and_sends_then(world: SandboxWorld) -> None:
    world.queue(intents(3))
    world.script.on_create("line-0", Answer.error(1302, headers={"Retry-After": "30"}))
    submitter = world.submitter(slots={"video": 5})
    monitor = Monitor(
        client=world.client,
        ledger=world.aledger,
        clock=world.clock,
        submitter=submitter,
        idle_interval=600,  # only the backoff's end can wake it sooner
        handle_signals=False,
    )
    start = world.clock.time()
    await monitor.run_once()
    assert world.creates_seen()["line-0"] == 1
    assert submitter.next_due() == pytest.approx(start + 30, abs=1)
    await monitor._pause(busy=False)  # sleeps on the manual clock until the backoff ends
    assert world.clock.time() - start == pytest.approx(30, abs=1)
    await monitor.run_once()
    assert world.ledger.counts()[LocalStatus.SUBMITTED] == 3
    assert world.creates_seen()["line-0"] == 2  # after its Retry-After, on the clock


async def test_a_default_callback_url_goes_with_tasks_that_have_none(tmp_path: Path) -> None:
    async with sandbox_world(tmp_path, sandbox_config(3)) as w:
        own, plain = intents(2)
        own = replace(own, callback_url="https://mine.example/hook")
        w.queue([own, plain])
        submitter = w.submitter(slots={"video": 3}, callback_url="https://kw.example/cb/t0k")
        await submitter.run_once()
        sent = {
            ext: (await w.truth(f"/sandbox/tasks/{ext}"))["callback_url"]
            for ext in ("line-0", "line-1")
        }
    assert sent == {"line-0": "https://mine.example/hook", "line-1": "https://kw.example/cb/t0k"}


class _Overlap(httpx.AsyncBaseTransport):
    """In front of the sandbox: counts how many creates are in flight at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.now = 0
        self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return await self.inner.handle_async_request(request)
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0)  # let every create already started get this far
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= 1


async def test_with_a_known_slot_limit_creates_go_out_together_within_the_free_slots(
    tmp_path: Path,
) -> None:
    async with sandbox_world(tmp_path, sandbox_config(6)) as w:
        overlap = _Overlap(SandboxTransport(w.app))
        w.client = KlingClient(
            api_key=API_KEY, base_url=BASE, transport=overlap, clock=w.clock, retry=RetryPolicy()
        )
        w.queue(intents(20))
        submitter = w.submitter(slots={"video": 6}, create_concurrency=4)
        await submitter.run_once()
        assert overlap.most == 4  # four at once, never more
        assert submitter.last_sent == 6  # exactly the free slots, nothing over
        assert w.refusals() == Counter()
        await w.monitor(submitter).run()
        await w.client.aclose()
        assert all_final(w.ledger)
        assert set(w.creates_seen().values()) == {1}
        assert w.app.state.sandbox.state.peak[Family.VIDEO] <= 6


async def test_while_the_limit_is_unknown_creates_go_one_at_a_time(tmp_path: Path) -> None:
    async with sandbox_world(tmp_path, sandbox_config(3)) as w:
        w.queue(intents(10))
        submitter = w.submitter(create_concurrency=4)  # no slot setting: learned from a 1303
        await submitter.run_once()
        assert w.refusals() == Counter({1303: 1})  # one 1303 teaches the limit, exactly
        assert await submitter.slot_limit("video") == 3


async def test_a_pass_sends_at_most_its_quota_so_sweeps_run_between(tmp_path: Path) -> None:
    async with sandbox_world(tmp_path, sandbox_config(50)) as w:
        w.queue(intents(30))
        submitter = w.submitter(slots={"video": 50}, create_concurrency=4, max_pass_creates=10)
        await submitter.run_once()
        assert submitter.last_sent == 10
        await submitter.run_once()
        assert submitter.last_sent == 10
        assert len(w.ledger.tasks(status=LocalStatus.QUEUED)) == 10


def test_while_the_slot_limit_is_unknown_creates_ramp_up_one_per_hundred_created() -> None:
    from klingwatch.monitor.submitter import unknown_limit_batch

    assert [unknown_limit_batch(n, 4) for n in (0, 99, 100, 250, 10_000)] == [1, 1, 2, 3, 4]
    assert unknown_limit_batch(10_000, 1) == 1  # never beyond the configured concurrency
