"""A small world for engine tests: a sandbox, a ledger and a client on one manual clock.

Tasks are created on the sandbox and recorded in the ledger the way the submitter does it
(intent first, then the create answer through the one door), so the engine under test only has
to watch them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.products import Family
from klingwatch.kling.retry import RetryPolicy
from klingwatch.monitor.observe import observe_create
from klingwatch.monitor.service import Monitor
from klingwatch.sandbox import Answer, SandboxConfig, SandboxTransport, ScriptConfig, create_app
from klingwatch.store import Ledger, NewTask
from klingwatch.store.async_ledger import AsyncLedger

API_KEY = "sandbox-api-key"
ACCESS_KEY, SECRET_KEY = "sandbox-ak", "sandbox-sk-0123456789abcdef0123456789abcdef"
BASE = "http://sandbox.test"

#: Timings of the simulated account (nominal seconds), no stragglers unless a test wants them.
CONFIG = SandboxConfig(
    access_keys={ACCESS_KEY: SECRET_KEY},
    api_keys=(API_KEY,),
    slots={Family.VIDEO: 5000, Family.IMAGE: 5000},
    straggler_rate=0.0,
    failure_rate=0.1,
    seed=7,
)


@dataclass
class World:
    clock: ManualClock
    app: Any
    ledger: Ledger
    client: KlingClient
    #: The same ledger as the engine sees it.
    aledger: AsyncLedger

    @property
    def sandbox(self) -> Any:
        return self.app.state.sandbox

    async def submit(
        self,
        n: int,
        *,
        product: str = "text2video",
        request: dict[str, Any] | None = None,
        batch: str = "b1",
        prefix: str = "t",
        callback_url: str | None = None,
    ) -> list[int]:
        """Create ``n`` tasks on the sandbox and record them as the submitter would
        (``callback_url``: recorded as the tasks' own, as a submitter with a public URL does;
        the sandbox delivers nothing unless a test asks it to)."""
        request = request or {"prompt": "a cat surfing", "model_name": "kling-v2-6", "mode": "std"}
        intents = [
            NewTask(
                product=product,
                request=request,
                external_task_id=f"{prefix}{i}",
                model=request.get("model_name"),
                mode=request.get("mode"),
                callback_url=callback_url,
            )
            for i in range(n)
        ]
        self.ledger.ensure_batch(batch)
        ids = self.ledger.add_tasks(batch, intents).added
        for local_id, intent in zip(ids, intents, strict=True):
            self.ledger.mark_sending(local_id, self.clock.time())
            task = await self.client.create(
                product, request, external_task_id=intent.external_task_id
            )
            self.ledger.apply(observe_create(task, local_id=local_id, at=self.clock.time()))
            self.clock.advance(0.01)  # creates take a moment, so creation times differ
        return ids

    async def truth(self) -> dict[str, dict[str, Any]]:
        """The sandbox's true state of every task (``/sandbox/tasks``), by external id."""
        async with httpx.AsyncClient(transport=SandboxTransport(self.app), base_url=BASE) as http:
            response = await http.get("/sandbox/tasks")
        return {t["external_task_id"]: t for t in response.json()["tasks"]}

    def served(self) -> int:
        """Requests the sandbox served (creates included)."""
        return sum(self.sandbox.state.requests.values())  # type: ignore[no-any-return]

    def monitor(self, **kw: Any) -> Monitor:
        kw.setdefault("handle_signals", False)
        return Monitor(client=self.client, ledger=self.aledger, clock=self.clock, **kw)


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path,
    *,
    api_key: bool = True,
    config: SandboxConfig = CONFIG,
    script: ScriptConfig | None = None,
    start: float = 1_767_225_600.0,
) -> AsyncIterator[World]:
    """A fresh sandbox and ledger; the client authenticates with an API key or with AK/SK.
    ``script``: answers the sandbox gives instead of the usual (:mod:`klingwatch.sandbox.script`).
    """
    clock = ManualClock(start=start)
    if script is not None:
        config = config.model_copy(update={"script": script})
    app = create_app(config, clock=clock)
    creds: dict[str, str] = (
        {"api_key": API_KEY} if api_key else {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}
    )
    client = KlingClient(
        **creds,
        base_url=BASE,
        transport=SandboxTransport(app),
        clock=clock,
        retry=RetryPolicy(),
        # The world's own setup creates hundreds of tasks at once; pacing is tested elsewhere.
        requests_per_second=1000.0,
    )
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    aledger = AsyncLedger(ledger)
    try:
        yield World(clock=clock, app=app, ledger=ledger, client=client, aledger=aledger)
    finally:
        await client.aclose()
        await aledger.aclose()
        ledger.close()


def per_task_polls(
    truth: dict[str, dict[str, Any]], intervals: tuple[float, ...] = (10, 10, 20, 30)
) -> int:
    """Requests the common recipe makes for the same tasks: one GET per task per look, first
    after 10 s, the interval growing to 30 s and staying there, until the end is seen."""
    total = 0
    for task in truth.values():
        length = (task["finished_at"] - task["created_at"]) / 1000.0
        t, i = 0.0, 0
        while True:
            t += intervals[min(i, len(intervals) - 1)]
            i += 1
            total += 1
            if t >= length:
                break
    return total


def refuse_tasks_api(status: int = 404, code: int = 1202) -> ScriptConfig:
    """A server that does not serve the /tasks style at all: every /tasks read answers one
    error."""
    refusal = Answer.error(code, "Invalid request: no such route", status=status).repeated(None)
    return ScriptConfig(routes={"GET /tasks": [refusal], "POST /tasks": [refusal]})


def failing_reads(status: int, code: int, message: str = "no") -> ScriptConfig:
    """A server whose every read answers one error."""
    return ScriptConfig(reads={"*": [Answer.error(code, message, status=status).repeated(None)]})
