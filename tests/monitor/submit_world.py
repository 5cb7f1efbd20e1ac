"""The world of the submitter tests: the sandbox in process, a ledger and a client, one clock.

:func:`sandbox_world` runs the sandbox through :class:`~klingwatch.sandbox.SandboxTransport`;
its ground truth is read over its ``/sandbox/`` routes or from its state, and a test scripts
the answers it needs (a refusal, a timeout, "created, then 500", a proxy's page) with
``world.script`` (:mod:`klingwatch.sandbox.script`).
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.products import Family
from klingwatch.kling.retry import RetryPolicy
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.submitter import Submitter
from klingwatch.sandbox import (
    Sandbox,
    SandboxConfig,
    SandboxTransport,
    Script,
    TimingSpec,
    create_app,
)
from klingwatch.store import Ledger, LocalStatus, NewTask
from klingwatch.store.async_ledger import AsyncLedger

BASE = "http://sandbox.test"
API_KEY = "submit-test-key"
AK, SK = "submit-test-ak", "submit-test-sk-0123456789abcdef0123456789"


def intents(n: int, *, prefix: str = "line", product: str = "text2video") -> list[NewTask]:
    """``n`` distinct text2video intents with external ids ``<prefix>-0``, ``<prefix>-1``, ..."""
    return [
        NewTask(
            product=product,
            request={"prompt": f"a fox, take {i}", "mode": "std"},
            external_task_id=f"{prefix}-{i}",
            mode="std",
        )
        for i in range(n)
    ]


@dataclass
class SandboxWorld:
    clock: ManualClock
    app: Any
    ledger: Ledger
    client: KlingClient
    db_url: str
    #: The same ledger as the engine sees it.
    aledger: AsyncLedger
    #: ``app.state.sandbox``: its config, state, script, ...
    sandbox: Sandbox

    def submitter(self, **kw: Any) -> Submitter:
        kw.setdefault("rng", random.Random(5))
        return Submitter(client=self.client, ledger=self.aledger, clock=self.clock, **kw)

    def monitor(self, submitter: Submitter, **kw: Any) -> Monitor:
        """The engine as ``submit --wait`` runs it (the submitter recovers ambiguous creates)."""
        kw.setdefault("handle_signals", False)
        kw.setdefault("until_done", True)
        return Monitor(
            client=self.client, ledger=self.aledger, clock=self.clock, submitter=submitter, **kw
        )

    def queue(self, tasks: list[NewTask], batch: str = "b1") -> list[int]:
        self.ledger.ensure_batch(batch)
        return self.ledger.add_tasks(batch, tasks).added

    @property
    def script(self) -> Script:
        """The sandbox's scripted answers (``on_create``, ``on_read``, ``on_route``)."""
        return self.sandbox.script

    def status(self, external_id: str) -> LocalStatus:
        """The ledger's status of the task ``external_id``."""
        record = self.ledger.task(external_id)
        assert record is not None
        return record.status

    async def truth(self, path: str) -> Any:
        async with httpx.AsyncClient(transport=SandboxTransport(self.app), base_url=BASE) as http:
            return (await http.get(path)).json()

    async def tasks_per_external_id(self) -> Counter[str]:
        """How many Kling tasks exist per external id (the sandbox's truth)."""
        tasks = (await self.truth("/sandbox/tasks"))["tasks"]
        return Counter(t["external_task_id"] for t in tasks)

    def creates_seen(self) -> Counter[str]:
        """How many create requests carried each external id (created or refused)."""
        return Counter(self.sandbox.state.creates_seen)

    def lookups_seen(self) -> Counter[str]:
        """How many reads looked each external id up (found or not)."""
        return Counter(self.sandbox.state.lookups_seen)

    def refusals(self) -> Counter[int]:
        """Create refusals by Kling code (1303, 1102, ...)."""
        return Counter(self.sandbox.state.create_refusals)


@contextlib.asynccontextmanager
async def sandbox_world(
    tmp_path: Path,
    config: SandboxConfig,
    *,
    url: str | None = None,
    api_key: bool = True,
    retry: RetryPolicy | None = None,
    clock: ManualClock | None = None,
) -> AsyncIterator[SandboxWorld]:
    """The sandbox, a client on it and a ledger (``url``, else a SQLite file in ``tmp_path``).

    The client has an API key (lookups through ``GET /tasks``, 20 at a time) or, with
    ``api_key=False``, AK/SK (one ``GET <create path>/<external id>`` per lookup). ``clock``:
    a manual clock of the test's (one started at the real time, for signatures checked
    against it).
    """
    clock = clock or ManualClock()
    app = create_app(config, clock=clock)
    creds = {"api_key": API_KEY} if api_key else {"access_key": AK, "secret_key": SK}
    client = KlingClient(
        **creds,
        base_url=BASE,
        transport=SandboxTransport(app),
        clock=clock,
        retry=retry or RetryPolicy(),
    )
    url = url or f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url, clock=clock)
    aledger = AsyncLedger(ledger)
    try:
        yield SandboxWorld(
            clock=clock,
            app=app,
            ledger=ledger,
            client=client,
            db_url=url,
            aledger=aledger,
            sandbox=app.state.sandbox,
        )
    finally:
        await client.aclose()
        await aledger.aclose()
        ledger.close()


def sandbox_config(video_slots: int, **kw: Any) -> SandboxConfig:
    kw.setdefault("failure_rate", 0.1)
    kw.setdefault("straggler_rate", 0.0)
    kw.setdefault("seed", 11)
    # Short tasks keep the simulated hours few: queue ~2 s, run ~25 s.
    kw.setdefault(
        "durations", {"video": TimingSpec(queue_p50=2, queue_p95=6, run_p50=25, run_p95=50)}
    )
    return SandboxConfig(
        api_keys=(API_KEY,), access_keys={AK: SK}, slots={Family.VIDEO: video_slots}, **kw
    )


def scripted_config() -> SandboxConfig:
    """For tests of single create answers: room for every task, none failing, each queued an
    hour, so a task the submitter made stays ``submitted`` whatever it looks up."""
    hour = TimingSpec(queue_p50=3600, queue_p95=3600, run_p50=60, run_p95=60)
    return sandbox_config(50, failure_rate=0.0, durations={"video": hour})


def all_final(ledger: Ledger) -> bool:
    return all(t.status.is_final for t in ledger.tasks())
