"""Worlds for submitter tests, all on one manual clock.

* :func:`sandbox_world`: the sandbox in-process (``httpx.ASGITransport``), a SQLite ledger in
  ``tmp_path`` and a client; the sandbox's ground truth is read over its ``/sandbox/`` routes.
* :class:`ScriptedKling`: an ``httpx.MockTransport`` Kling whose create answers are scripted per
  external id ("created", any error code, a timeout, "created, then 500"), for the answers the
  sandbox does not make on demand.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.products import Family
from klingwatch.kling.retry import RetryPolicy
from klingwatch.monitor.service import Monitor
from klingwatch.monitor.submitter import Submitter
from klingwatch.sandbox import SandboxConfig, TimingSpec, create_app
from klingwatch.store import Ledger, LocalStatus, NewTask
from klingwatch.store.async_ledger import AsyncLedger

BASE = "http://sandbox.test"
API_KEY = "submit-test-key"


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

    async def truth(self, path: str) -> Any:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE
        ) as http:
            return (await http.get(path)).json()

    async def tasks_per_external_id(self) -> Counter[str]:
        """How many Kling tasks exist per external id (the sandbox's truth)."""
        tasks = (await self.truth("/sandbox/tasks"))["tasks"]
        return Counter(t["external_task_id"] for t in tasks)

    def creates_seen(self) -> Counter[str]:
        """How many create requests carried each external id (created or refused)."""
        return Counter(self.app.state.sandbox.state.creates_seen)

    def refusals(self) -> Counter[int]:
        """Create refusals by Kling code (1303, 1102, ...)."""
        return Counter(self.app.state.sandbox.state.create_refusals)


@contextlib.asynccontextmanager
async def sandbox_world(
    tmp_path: Path, config: SandboxConfig, *, url: str | None = None
) -> AsyncIterator[SandboxWorld]:
    """The sandbox, a client on it and a ledger (``url``, else a SQLite file in ``tmp_path``)."""
    clock = ManualClock()
    app = create_app(config, clock=clock)
    client = KlingClient(
        api_key=API_KEY,
        base_url=BASE,
        transport=httpx.ASGITransport(app=app),
        clock=clock,
        retry=RetryPolicy(),
    )
    url = url or f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url, clock=clock)
    aledger = AsyncLedger(ledger)
    try:
        yield SandboxWorld(
            clock=clock, app=app, ledger=ledger, client=client, db_url=url, aledger=aledger
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
    return SandboxConfig(api_keys=(API_KEY,), slots={Family.VIDEO: video_slots}, **kw)


def all_final(ledger: Ledger) -> bool:
    return all(t.status.is_final for t in ledger.tasks())


# -- a scripted Kling --------------------------------------------------------------------------
CREATE_PATH = "/v1/videos/text2video"


@dataclass
class ScriptedKling:
    """Creates answer from ``script[external_id]`` (one entry per create; then "created").

    Entries: ``"created"``; ``"timeout"`` (nothing created, the request times out);
    ``"created-then-500"``; ``(http_status, code)`` / ``(http_status, code, headers)``, an
    error envelope (nothing created); or an ``httpx.Response``, answered as it is (a proxy's
    page; nothing created). ``lookups_fail`` makes every read answer 500/5000.
    """

    clock: ManualClock
    script: dict[str, list[Any]] = field(default_factory=dict)
    lookups_fail: bool = False
    #: False: ``/tasks`` answers 404/1202, as on a server without the 2026 API
    tasks_style: bool = True
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    creates: Counter[str] = field(default_factory=Counter)
    lookups: Counter[str] = field(default_factory=Counter)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(800_000_000))

    def client(self, *, api_key: bool = True) -> KlingClient:
        """A client on this fake: with an API key (lookups through ``GET /tasks``, 20 at a
        time) or with AK/SK (one ``GET <create path>/<external id>`` per lookup)."""
        creds = {"api_key": API_KEY} if api_key else {"access_key": "ak", "secret_key": "sk" * 8}
        return KlingClient(
            **creds,
            base_url=BASE,
            transport=httpx.MockTransport(self.handler),
            clock=self.clock,
            retry=RetryPolicy(attempts=1),
        )

    def _task(self, ext: str) -> dict[str, Any]:
        ms = round(self.clock.time() * 1000)
        task = {
            "task_id": str(next(self._ids)),
            "task_status": "submitted",
            "task_status_msg": "",
            "task_info": {"external_task_id": ext},
            "created_at": ms,
            "updated_at": ms,
        }
        self.tasks[ext] = task
        return task

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == CREATE_PATH:
            ext = json.loads(request.content)["external_task_id"]
            self.creates[ext] += 1
            steps = self.script.get(ext) or ["created"]
            step = steps.pop(0) if steps else "created"
            if step == "created":
                return _ok(self._task(ext))
            if step == "timeout":
                raise httpx.ReadTimeout("timed out", request=request)
            if step == "created-then-500":
                self._task(ext)
                return _error(500, 5000)
            if isinstance(step, httpx.Response):
                return step
            status, code, *rest = step
            headers = rest[0] if rest else {}
            message = rest[1] if len(rest) > 1 else "refused"
            return _error(status, code, message, **headers)
        by_query = request.url.params.get("external_task_id")
        if request.method == "GET" and (path.startswith(CREATE_PATH + "/") or by_query):
            ext = by_query or path.rsplit("/", 1)[1]
            self.lookups[ext] += 1
            if self.lookups_fail:
                return _error(500, 5000)
            found = self.tasks.get(ext)
            return _ok(found) if found else _error(400, 1201, message="Task not found")
        if request.method == "GET" and path == "/tasks" and self.tasks_style:
            wanted = request.url.params["external_task_ids"].split(",")
            for ext in wanted:
                self.lookups[ext] += 1
            if self.lookups_fail:
                return _error(500, 5000)
            return _ok([self.tasks[e] for e in wanted if e in self.tasks])
        return _error(404, 1202)

    def status(self, ledger: Ledger, ext: str) -> LocalStatus:
        record = ledger.task(ext)
        assert record is not None
        return record.status


def _ok(data: Any) -> httpx.Response:
    return httpx.Response(
        200, json={"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}
    )


def _error(status: int, code: int, message: str = "refused", **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"code": code, "message": message, "request_id": "r"},
        headers=headers,
    )
