"""Outbound events (klingwatch.monitor.outbound): every status change reaches a real receiver,
signed the Standard Webhooks way, at least once, from a durable outbox; replicas share it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from submit_world import SandboxWorld, intents, sandbox_config, sandbox_world

from klingwatch.clock import ManualClock
from klingwatch.monitor.outbound import EVENT_TYPE, EventDelivery
from klingwatch.sandbox import Answer, TimingSpec
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source
from klingwatch.store.async_ledger import AsyncLedger
from receiver import Receiver, receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SHORT = {"video": TimingSpec(queue_p50=2, queue_p95=4, run_p50=20, run_p95=30)}


@pytest.fixture
def inbox() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


@pytest.fixture
async def world(tmp_path: Path, ledger_url: str) -> AsyncIterator[SandboxWorld]:
    config = sandbox_config(50, failure_rate=0.0, durations=SHORT)
    # Signatures carry the clock's time and receivers check it against theirs: start at now.
    clock = ManualClock(start=time.time())
    async with sandbox_world(tmp_path, config, url=ledger_url, clock=clock) as w:
        yield w


def delivery(ledger: AsyncLedger, clock: Any, inbox: Receiver, **kw: Any) -> EventDelivery:
    kw.setdefault("secret", SECRET)
    return EventDelivery(ledger, clock=clock, url=f"{inbox.base}/events", **kw)


def verified(inbox: Receiver) -> list[dict[str, Any]]:
    """Every event the receiver acknowledged, each checked against its signature."""
    hook = Webhook(SECRET)
    out = []
    for request in inbox.got("/events"):
        payload = hook.verify(request.body, request.headers)
        assert request.headers["webhook-id"].endswith(f"_{payload['id']}")
        out.append(payload)
    return out


def status_changes(ledger: Ledger) -> list[tuple[int, str | None, str]]:
    """(event id, from, to) of every status change the ledger holds."""
    out = []
    for task in ledger.tasks():
        for e in ledger.events(task.local_id):
            if e.from_status is not None and e.from_status is not e.to_status:
                out.append((e.id, e.from_status.value, e.to_status.value))
    return sorted(out)


async def test_every_status_change_of_a_run_arrives_signed_in_one_shape(
    world: SandboxWorld, inbox: Receiver
) -> None:
    events = delivery(world.aledger, world.clock, inbox)
    await events.start()
    world.queue(intents(6))
    world.script.on_create("line-2", Answer.served(run=10, fail="content moderation"))
    monitor = world.monitor(world.submitter(slots={"video": 50}), workers=[events])
    await monitor.run()  # until done; drains the outbox before returning

    got = verified(inbox)
    assert sorted((e["id"], e["from"], e["to"]) for e in got) == status_changes(world.ledger)
    assert len({r.headers["webhook-id"] for r in inbox.got("/events")}) == len(got)
    finals = {e["external_task_id"]: e for e in got if e["to"] in ("succeed", "failed")}
    assert sorted(finals) == [f"line-{i}" for i in range(6)]
    failed = finals["line-2"]
    assert failed["status_msg"] == "content moderation"
    assert failed["result"] is None
    ok = finals["line-0"]
    assert ok["type"] == EVENT_TYPE
    assert ok["batch"] == "b1"
    assert ok["product"] == "text2video"
    assert ok["mode"] == "std"
    assert ok["task_id"]
    assert ok["result"]["videos"][0]["url"].startswith("http")
    assert ok["at"].endswith("Z")
    assert isinstance(ok["at_ms"], int)
    assert ok["source"] in {s.value for s in Source}
    assert await world.aledger.outbox_pending() == (0, None)


async def test_a_failing_receiver_gets_the_same_event_again_with_the_same_webhook_id(
    world: SandboxWorld, inbox: Receiver
) -> None:
    events = delivery(world.aledger, world.clock, inbox)
    await events.start()
    [local_id] = world.queue(intents(1))
    world.ledger.apply(
        Observation(
            LocalStatus.SUBMITTED,
            Source.CREATE,
            world.clock.time(),
            local_id=local_id,
            task_id="k1",
        )
    )
    inbox.fail_next(3, status=502)
    for _ in range(3):
        assert await events.deliver_due() == 0
        count, due = await world.aledger.outbox_pending()
        assert count == 1
        assert due is not None
        assert due > world.clock.time()  # backing off, not hammering
        world.clock.advance(due - world.clock.time())
    assert await events.deliver_due() == 1
    tries = inbox.got("/events", ok_only=False)
    assert [r.status for r in tries] == [502, 502, 502, 200]
    assert len({r.headers["webhook-id"] for r in tries}) == 1
    assert [e["to"] for e in verified(inbox)] == ["submitted"]
    assert await events.deliver_due() == 0  # delivered once: owed no more


async def test_a_ledger_nobody_delivers_from_owes_nothing(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'k.db'}", clock=ManualClock()) as ledger:
        [local_id] = ledger.add_tasks("b", [NewTask("text2video", {}, "e1")]).added
        ledger.apply(Observation(LocalStatus.SUBMITTED, Source.CREATE, 1.0, local_id=local_id))
        assert ledger.outbox_pending() == (0, None)
        ledger.enable_outbox()
        ledger.apply(Observation(LocalStatus.PROCESSING, Source.GET, 2.0, local_id=local_id))
        ledger.apply(Observation(LocalStatus.PROCESSING, Source.LIST, 3.0, local_id=local_id))
        ledger.apply(Observation(LocalStatus.SUCCEED, Source.GET, 4.0, task_id="unknown-id"))
        # One status change owed: the repeat changed nothing, the orphan names no task here.
        assert ledger.outbox_pending() == (1, 2.0)


@pytest.mark.postgres
async def test_replicas_on_one_postgresql_share_the_outbox_without_sending_twice(
    postgres_url: str, inbox: Receiver
) -> None:
    clock = ManualClock(start=time.time())
    with Ledger.open(postgres_url, clock=clock) as setup:
        setup.enable_outbox()
        ids = setup.add_tasks("b", [NewTask("text2video", {}, f"e{i}") for i in range(150)]).added
        setup.apply_many(
            Observation(LocalStatus.SUBMITTED, Source.CREATE, clock.time(), local_id=i) for i in ids
        )
    start = threading.Barrier(2)
    sent: dict[str, int] = {}
    errors: list[BaseException] = []

    def replica(owner: str) -> None:
        import asyncio

        async def run() -> None:
            async with await AsyncLedger.open(postgres_url, clock=clock) as ledger:
                events = delivery(ledger, clock, inbox, owner=owner, batch_size=10, concurrency=2)
                await events.start()
                start.wait()
                sent[owner] = await events.deliver_due()

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(o,)) for o in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    ids_seen = Counter(r.headers["webhook-id"] for r in inbox.got("/events"))
    assert len(ids_seen) == 150
    assert set(ids_seen.values()) == {1}
    assert sent["a"] + sent["b"] == 150
    assert sent["a"] > 0
    assert sent["b"] > 0


async def test_the_engine_wakes_for_an_event_when_its_backoff_ends_not_before(
    world: SandboxWorld,
) -> None:
    events = EventDelivery(
        world.aledger, clock=world.clock, url="http://127.0.0.1:9/nobody", secret=SECRET
    )
    await events.start()
    [local_id] = world.queue(intents(1))
    world.ledger.apply(
        Observation(LocalStatus.SUBMITTED, Source.CREATE, world.clock.time(), local_id=local_id)
    )
    await events.run_once()
    assert events.busy()
    assert events.next_due() is None  # nothing to wake for while the round runs
    assert events._round is not None
    await events._round
    await events.run_once()
    _, due = await world.aledger.outbox_pending()
    assert due is not None
    assert events.next_due() == due
    assert due > world.clock.time()
