"""The app runs the engine for its lifetime: started with it, stopped before it ends, and
``/healthz`` says how it is."""

from __future__ import annotations

import asyncio

import httpx
from serverkit import app_for, client_of, settings

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor.service import Monitor
from klingwatch.operations import Operations
from klingwatch.sandbox import SandboxConfig, TimingSpec
from klingwatch.sandbox import create_app as create_sandbox
from klingwatch.server.app import create_app
from klingwatch.store import Ledger, LocalStatus, NewTask
from klingwatch.store.async_ledger import AsyncLedger

FAST = {"text2video": TimingSpec(queue_p50=5, queue_p95=10, run_p50=30, run_p95=60)}


async def test_the_engine_runs_with_the_app_and_stops_with_it(
    ledger: Ledger, clock: ManualClock
) -> None:
    sandbox = create_sandbox(
        SandboxConfig(failure_rate=0.0, straggler_rate=0.0, durations=FAST), clock=clock
    )
    ledger.add_tasks(
        "b",
        [
            NewTask(
                product="text2video",
                request={"prompt": f"a tide pool, take {n}", "model_name": "kling-v2-6"},
                external_task_id=f"b-{n}",
                model="kling-v2-6",
            )
            for n in range(3)
        ],
    )
    client = KlingClient(
        access_key="ak",
        secret_key="sk",
        base_url="http://sandbox.test",
        transport=httpx.ASGITransport(app=sandbox),
        clock=clock,
    )
    ops = Operations(settings=settings(), ledger=AsyncLedger(ledger), clock=clock, client=client)
    monitor = ops.engine()
    app = create_app(ops, monitor=monitor)
    async with client, app.router.lifespan_context(app), client_of(app) as http:
        health = await http.get("/healthz")
        assert (health.status_code, health.json()["engine"]) == (200, "running")
        # The engine sleeps on the manual clock, which moves as it sleeps: yielding is enough.
        for _ in range(20_000):
            if ledger.counts()[LocalStatus.SUCCEED] == 3:
                break
            await asyncio.sleep(0)
        stats = (await http.get("/api/stats")).json()
    assert ledger.counts()[LocalStatus.SUCCEED] == 3
    assert stats["engine"]["running"] is True
    assert stats["engine"]["requests"] > 0
    assert monitor.stopping  # the app asked it to stop on the way out
    assert app.state.klingwatch.engine.done()


class BrokenEngine(Monitor):
    """An engine with a bug: its loop raises at once."""

    async def run(self) -> None:
        raise RuntimeError("a bug in the engine")


async def test_healthz_says_when_the_engine_died(ledger: Ledger, clock: ManualClock) -> None:
    client = KlingClient(
        access_key="ak", secret_key="sk", base_url="http://kling.test", clock=clock
    )
    monitor = BrokenEngine(
        client=client, ledger=AsyncLedger(ledger), clock=clock, handle_signals=False
    )
    app = app_for(ledger, settings=settings(), clock=clock, client=client, monitor=monitor)
    async with client, app.router.lifespan_context(app), client_of(app) as http:
        await asyncio.sleep(0)  # let the engine task run (and fail)
        health = await http.get("/healthz")
        page = await http.get("/api/stats")
    assert health.status_code == 503
    assert health.json()["status"] == "engine stopped"
    assert "a bug in the engine" in health.json()["error"]
    assert page.status_code == 200  # the dashboard keeps serving the ledger
