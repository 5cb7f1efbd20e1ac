"""The receiver against the sandbox's real callbacks: duplicated, reordered (so a stale
``processing`` arrives after the end), signed or not. The ledger must end at the true states."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from serverkit import CALLBACK_TOKEN, SECRET, app_for, client_of, legacy_body, raw, settings

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor.observe import STATUS_MAP, observe_create
from klingwatch.sandbox import SandboxConfig, TimingSpec
from klingwatch.sandbox import create_app as create_sandbox
from klingwatch.store import Ledger, NewTask

PUBLIC_URL = "http://klingwatch.test"
#: Kling posts here, so its requests carry ``Host: klingwatch.test``: the public URL's host.
CALLBACK_URL = f"{PUBLIC_URL}/callbacks/kling/{CALLBACK_TOKEN}"


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def sandbox_config(**kw: Any) -> SandboxConfig:
    base: dict[str, Any] = {
        "seed": 11,
        "slots": {"video": 50},
        "failure_rate": 0.3,
        "straggler_rate": 0.0,
        "durations": {"text2video": TimingSpec(queue_p50=5, queue_p95=10, run_p50=30, run_p95=60)},
        "callbacks": "all",
        "callback_duplicate_rate": 0.5,
        "callback_reorder_rate": 0.6,
    }
    return SandboxConfig(**{**base, **kw})


class World:
    """A sandbox whose callbacks go straight into the klingwatch app, on one manual clock."""

    def __init__(self, ledger: Ledger, clock: ManualClock, config: SandboxConfig, **app_kw: Any):
        holder: dict[str, ASGIApp] = {}

        async def receiver(scope: Scope, receive: Any, send: Any) -> None:
            await holder["app"](scope, receive, send)

        self.sandbox_app = create_sandbox(
            config, clock=clock, callback_transport=httpx.ASGITransport(app=receiver)
        )
        self.sandbox = self.sandbox_app.state.sandbox
        self.client = KlingClient(
            access_key="ak",
            secret_key="sk",
            base_url="http://sandbox.test",
            transport=httpx.ASGITransport(app=self.sandbox_app),
            clock=clock,
        )
        self.app = app_for(
            ledger,
            settings=settings(public_url=PUBLIC_URL, **app_kw),
            clock=clock,
            client=self.client,
        )
        holder["app"] = self.app
        self.ledger = ledger
        self.clock = clock

    async def submit(self, n: int) -> None:
        external = f"w-{n}"
        added = self.ledger.add_tasks(
            "world",
            [
                NewTask(
                    product="text2video",
                    request={"prompt": f"scene {n}", "model_name": "kling-v2-6"},
                    external_task_id=external,
                    model="kling-v2-6",
                    callback_url=CALLBACK_URL,
                )
            ],
        )
        created = await self.client.create(
            "text2video",
            {"prompt": f"scene {n}", "model_name": "kling-v2-6"},
            external_task_id=external,
            callback_url=CALLBACK_URL,
        )
        self.ledger.apply(observe_create(created, local_id=added.added[0], at=self.clock.time()))

    async def run_callbacks(self) -> None:
        """Move time until every planned callback was delivered."""
        for _ in range(1000):
            if self.sandbox.callbacks.pending() == 0:
                return
            self.clock.advance(2)
            await self.sandbox.callbacks.deliver_due()
            await self.app.state.klingwatch.callbacks.drain()  # confirmations run after answers
        raise AssertionError("callbacks still pending after 2000 s")

    async def assert_ledger_is_true(self) -> None:
        tasks = self.ledger.tasks()
        assert tasks
        for record in tasks:
            assert record.task_id is not None
            truth = await self.client.get("text2video", record.task_id)
            assert truth.is_terminal
            assert record.status is STATUS_MAP[truth.status], record.external_task_id
            if truth.videos:
                assert record.result is not None
                assert record.result["videos"][0]["url"] == truth.videos[0].url
            else:
                assert record.status_msg == (truth.status_msg or None)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
async def test_the_ledger_ends_at_the_true_states(
    ledger: Ledger, clock: ManualClock, signed: bool
) -> None:
    secret = SECRET if signed else None
    world = World(ledger, clock, sandbox_config(webhook_secret=secret), webhook_secret=secret)
    async with world.client:
        for n in range(1, 21):
            await world.submit(n)
        await world.run_callbacks()
        counts = world.sandbox.callbacks.counts
        assert counts["duplicated"] > 0
        assert counts["reordered"] > 0
        await world.assert_ledger_is_true()
    outcomes = world.app.state.klingwatch.metrics.callback_counts
    assert outcomes["unchanged"] > 0  # duplicates and late stale statuses were absorbed
    assert outcomes["bad_signature"] == 0
    if not signed:
        assert outcomes["confirmed"] > 0  # each unsigned final status was checked with a get


async def test_unsigned_final_statuses_are_confirmed_many_per_request(
    ledger: Ledger, clock: ManualClock
) -> None:
    # Forty tasks that all end within a few seconds: their final callbacks come in a burst.
    quick = {"text2video": TimingSpec(queue_p50=1, queue_p95=2, run_p50=20, run_p95=22)}
    world = World(ledger, clock, sandbox_config(durations=quick, callback_duplicate_rate=0.0))
    receiver = world.app.state.klingwatch.callbacks
    async with world.client:
        for n in range(1, 41):
            await world.submit(n)
        before = world.sandbox.state.requests.copy()
        # Time moves only when told, half a second at a time, as deliveries go out: the
        # confirming reads of each half second are gathered (as they are on a real clock).
        clock.auto_advance = False
        for _ in range(400):
            if world.sandbox.callbacks.pending() == 0 and not receiver._pending:
                break
            clock.advance(0.5)
            await world.sandbox.callbacks.deliver_due()
            await asyncio.sleep(0.05)  # the ledger's threads and the confirmations run
        clock.auto_advance = True
        reads = sum(
            n
            for (route, _, _), n in (world.sandbox.state.requests - before).items()
            if route.startswith("GET ")
        )
        await world.assert_ledger_is_true()
    outcomes = world.app.state.klingwatch.metrics.callback_counts
    assert outcomes["confirmed"] >= 30
    # As the sandbox counted them: a legacy list page (500 a page) per burst, not one get per
    # final status.
    assert reads <= outcomes["confirmed"] / 2
    assert reads == receiver.confirm_requests


async def test_forged_callbacks_posted_by_hand_do_not_move_the_ledger(
    ledger: Ledger, clock: ManualClock
) -> None:
    slow = {"text2video": TimingSpec(queue_p50=5, queue_p95=10, run_p50=900, run_p95=1200)}
    world = World(ledger, clock, sandbox_config(callback_reorder_rate=0.0, durations=slow))
    async with world.client, client_of(world.app) as http:
        await world.submit(1)
        record = ledger.task("w-1")
        assert record is not None
        assert record.task_id is not None
        forged = legacy_body(1, "succeed", batch="w")
        forged["task_id"] = record.task_id
        forged["task_info"] = {"external_task_id": "w-1"}
        answer = await http.post(f"/callbacks/kling/{CALLBACK_TOKEN}", content=raw(forged))
        assert answer.json()["outcome"] == "confirming"
        after = ledger.task("w-1")
        assert after is not None
        assert not after.status.is_final  # Kling said it is still going; the forgery lost
        await world.run_callbacks()
        await world.assert_ledger_is_true()
