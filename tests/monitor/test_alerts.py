"""Alerts in the engine (klingwatch.monitor.alerts): rules fire once per incident at a real
receiver (apprise's json:// target on a loopback socket), with cool-downs, closing, retries."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from submit_world import SandboxWorld, intents, sandbox_config, sandbox_world

from klingwatch.monitor import gates
from klingwatch.monitor.alert_rules import AlertSettings
from klingwatch.monitor.alerts import AlertWorker
from klingwatch.monitor.notify import Notifier, parse_targets
from klingwatch.monitor.service import Monitor
from klingwatch.sandbox import Answer, TimingSpec
from klingwatch.store import LocalStatus, NewTask, Observation, Source
from receiver import Receiver, receiver

HOUR = 3600.0
SHORT = {"video": TimingSpec(queue_p50=2, queue_p95=4, run_p50=20, run_p95=30)}


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[SandboxWorld]:
    config = sandbox_config(50, failure_rate=0.0, durations=SHORT)
    async with sandbox_world(tmp_path, config) as w:
        yield w


def alerts_for(world: SandboxWorld, inbox: Receiver, **kw: Any) -> AlertWorker:
    settings = AlertSettings(
        failure_percent=20, failure_min_finished=5, public_url="https://kw.example"
    )
    return AlertWorker(
        world.aledger,
        clock=world.clock,
        notifier=Notifier(parse_targets(inbox.apprise_url())),
        settings=kw.pop("settings", settings),
        interval=30,
        **kw,
    )


async def step(monitor: Monitor, alerts: AlertWorker, world: SandboxWorld, seconds: float) -> None:
    """One engine iteration, the alert round it started run to its end, then time passes."""
    await monitor.run_once()
    if alerts._round is not None:
        await alerts._round
    world.clock.advance(seconds)


def titles(inbox: Receiver) -> list[str]:
    return [m["title"] for m in inbox.messages()]


async def test_a_failure_burst_and_a_paused_pack_are_told_once_each(
    world: SandboxWorld, inbox: Receiver
) -> None:
    world.queue(intents(20))
    for i in range(8):  # a burst: eight of the first fifteen fail
        world.script.on_create(f"line-{i}", Answer.served(run=10, fail="content moderation"))
    world.script.on_create("line-15", Answer.error(1102, "resource pack exhausted"))
    alerts = alerts_for(world, inbox)
    monitor = world.monitor(world.submitter(slots={"video": 50}), workers=[alerts])
    for _ in range(40):
        await step(monitor, alerts, world, 15)

    assert world.refusals()[1102] == 1
    [burst] = [m for m in inbox.messages() if "failed" in m["title"]]
    [paused] = [m for m in inbox.messages() if "paused" in m["title"]]
    assert len(inbox.messages()) == 2
    # Told when the rule first saw the burst: over 20% of at least five finished tasks.
    found = re.fullmatch(r"klingwatch: (\d+)% of batch b1 failed", burst["title"])
    assert found is not None
    assert int(found[1]) > 20
    assert re.search(
        r"\d+ of \d+ finished tasks failed \(\d+ failed, 0 rejected\)", burst["message"]
    )
    assert paused["title"] == (
        "klingwatch: Kling paused submissions (code 1102: the resource pack is exhausted or "
        "expired)"
    )
    assert "https://kw.example/batches/b1" in burst["message"]
    assert "5 tasks wait in the queue" in paused["message"]

    # Still paused six hours on: told again, once (the cool-down); the burst too, still open.
    for _ in range(3):
        await step(monitor, alerts, world, 3 * HOUR + 1)
    assert len([t for t in titles(inbox) if "paused" in t]) == 2
    assert len([t for t in titles(inbox) if "failed" in t]) == 2


async def test_resuming_closes_the_pause_and_the_finished_batch_is_summed_up_once(
    world: SandboxWorld, inbox: Receiver
) -> None:
    world.queue(intents(6))
    world.script.on_create("line-4", Answer.error(1102, "resource pack exhausted"))
    world.script.on_create("line-1", Answer.served(run=10, fail="content moderation"))
    alerts = alerts_for(world, inbox)
    monitor = world.monitor(world.submitter(slots={"video": 50}), workers=[alerts])
    for _ in range(10):
        await step(monitor, alerts, world, 15)
    [paused] = world.ledger.incidents(rule="paused")
    assert paused.open
    gates.resume(world.ledger)
    for _ in range(20):
        await step(monitor, alerts, world, 15)

    [paused] = world.ledger.incidents(rule="paused")
    assert not paused.open  # the condition cleared: closed, and no message says so
    summaries = [m for m in inbox.messages() if "finished" in m["title"]]
    assert [m["title"] for m in summaries] == ["klingwatch: batch b1 finished"]
    [summary] = summaries
    assert (
        summary["message"]
        .splitlines()[0]
        .startswith("Batch b1 finished: 6 tasks (5 succeed, 1 failed)")
    )
    assert "units" in summary["message"]
    assert "Dashboard: https://kw.example/batches/b1" in summary["message"]
    assert len([t for t in titles(inbox) if "paused" in t]) == 1


async def test_a_stuck_task_is_one_message_and_its_incident_closes_when_it_moves(
    world: SandboxWorld, inbox: Receiver
) -> None:
    [local_id] = world.queue(intents(1))
    alerts = alerts_for(world, inbox)
    now = world.clock.time()
    world.ledger.set_stuck(local_id, True, "processing for 40m00s, past its p99", now)
    for _ in range(3):
        await alerts.run_round()
        world.clock.advance(30)
    assert titles(inbox) == ["klingwatch: task line-0 is stuck"]
    assert "past its p99" in inbox.messages()[0]["message"]
    world.ledger.set_stuck(local_id, False, None, world.clock.time())
    await alerts.run_round()
    assert world.ledger.incidents(open_only=True) == []
    assert len(inbox.messages()) == 1


async def test_an_alert_that_could_not_be_delivered_is_sent_on_the_next_round(
    world: SandboxWorld, inbox: Receiver
) -> None:
    [local_id] = world.queue(intents(1))
    world.ledger.set_stuck(local_id, True, "stuck", world.clock.time())
    alerts = alerts_for(world, inbox)
    inbox.fail_next(1, status=503)
    await alerts.run_round()
    assert inbox.messages() == []
    assert alerts.undelivered == 1
    await alerts.run_round()
    assert titles(inbox) == ["klingwatch: task line-0 is stuck"]
    await alerts.run_round()
    assert len(inbox.messages()) == 1


async def test_an_unreachable_target_never_stops_the_engine(world: SandboxWorld) -> None:
    world.queue(intents(2))
    dead = Notifier(parse_targets("json://127.0.0.1:9/nobody"))
    alerts = AlertWorker(world.aledger, clock=world.clock, notifier=dead, interval=30)
    [local_id, _] = [t.local_id for t in world.ledger.tasks()]
    world.ledger.set_stuck(local_id, True, "stuck", world.clock.time())
    monitor = world.monitor(world.submitter(slots={"video": 50}), workers=[alerts])
    for _ in range(12):
        await step(monitor, alerts, world, 15)
    assert all(t.status.is_final for t in world.ledger.tasks())
    assert alerts.undelivered >= 1
    [incident] = world.ledger.incidents(rule="stuck")
    assert incident.notified_at is None  # still owed, for when the target answers again


async def test_callbacks_silent_while_polling_finds_the_finishes(
    world: SandboxWorld, inbox: Receiver
) -> None:
    tasks = [
        NewTask("text2video", {}, f"cb-{i}", callback_url="https://kw.example/callbacks/kling/t")
        for i in range(6)
    ]
    ids = world.queue(tasks)
    at = world.clock.time()
    world.ledger.apply_many(
        Observation(LocalStatus.SUCCEED, Source.LIST, at, local_id=i, task_id=f"k{i}")
        for i in ids[:5]
    )
    alerts = alerts_for(world, inbox)
    await alerts.run_round()
    assert titles(inbox) == ["klingwatch: Kling's callbacks are not arriving"]
    # A callback arrives: they work after all; the incident closes.
    world.ledger.apply(Observation(LocalStatus.SUCCEED, Source.CALLBACK, at + 1, local_id=ids[5]))
    await alerts.run_round()
    [silent] = world.ledger.incidents(rule="callbacks_silent")
    assert not silent.open
    assert titles(inbox) == [
        "klingwatch: Kling's callbacks are not arriving",
        "klingwatch: batch b1 finished",
    ]


async def test_results_not_downloaded_before_kling_deletes_them_are_told_per_batch(
    world: SandboxWorld, inbox: Receiver
) -> None:
    ids = world.queue(intents(2), batch="old")
    ended = int((world.clock.time() - 27 * 86400) * 1000)  # deleted in 3 days
    result = {"videos": [{"id": "v", "url": "https://cdn.example/v.mp4"}]}
    world.ledger.apply_many(
        Observation(
            LocalStatus.SUCCEED,
            Source.GET,
            world.clock.time(),
            local_id=i,
            task_id=f"k{i}",
            kling_updated_ms=ended,
            result=result,
        )
        for i in ids
    )
    alerts = alerts_for(world, inbox)
    await alerts.run_round()
    expiring = [m for m in inbox.messages() if "expire" in m["title"]]
    assert [m["title"] for m in expiring] == ["klingwatch: results of batch old expire soon"]
    assert "2 succeeded tasks of batch old are not downloaded" in expiring[0]["message"]


async def test_many_incidents_of_one_rule_at_once_are_one_digest(
    world: SandboxWorld, inbox: Receiver
) -> None:
    ids = world.queue(intents(12))
    for local_id in ids:
        world.ledger.set_stuck(local_id, True, "no update from Kling for 1h05m", world.clock.time())
    alerts = alerts_for(world, inbox)
    await alerts.run_round()
    [digest] = inbox.messages()
    assert digest["title"] == "klingwatch: 12 stuck alerts"
    assert digest["message"].splitlines()[0] == (
        "- Task line-0 (batch b1) is stuck: no update from Kling for 1h05m."
    )
    assert len(digest["message"].splitlines()) == 12
    # Each incident was told by it: none is owed again.
    assert all(i.notified_at is not None for i in world.ledger.incidents())
    await alerts.run_round()
    assert len(inbox.messages()) == 1
