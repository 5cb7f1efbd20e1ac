"""The client tests' Kling: the sandbox in process, on a manual clock, with what the client sent.

:func:`kling_world` gives a :class:`KlingWorld`: the sandbox app, its state and script, a
:class:`Recorder` of every request the client under test sent (and every answer it got), and
:meth:`KlingWorld.client` to build that client. :meth:`KlingWorld.seed` puts a task on the
account with a known life, the way an earlier create would have. For answers no server would
give (network failures, garbled bodies) tests use a tiny ``httpx.MockTransport`` instead.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.products import Family, get_product
from klingwatch.sandbox import Sandbox, SandboxConfig, SandboxTransport, Script, create_app
from klingwatch.sandbox.lifecycle import SandboxTask
from klingwatch.sandbox.outputs import task_at
from klingwatch.sandbox.script import Plan

AK, SK, API_KEY = (
    "ak-test-0001",
    "sk-SECRET-never-printed-0123456789abcdef",
    "kapi-SECRET-never-printed",
)
BASE = "https://kling.test"
T2V = "/v1/videos/text2video"
NEW = "text-to-video/kling-3.0-turbo"


class Recorder(httpx.AsyncBaseTransport):
    """In front of another transport: keeps each request (a copy: httpx re-sends the same
    object after re-signing it), the clock's time when it left, and the answer it got."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: ManualClock) -> None:
        self.inner = inner
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.answers: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(
            httpx.Request(
                request.method, request.url, headers=request.headers, content=request.content
            )
        )
        self.times.append(self.clock.time())
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.answers.append(response)
        return response

    def calls(self, method: str | None = None, path: str | None = None) -> list[httpx.Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.url.path == path)
        ]

    def bodies(self, method: str = "POST") -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.calls(method)]


@dataclass
class KlingWorld:
    clock: ManualClock
    app: Any
    #: ``app.state.sandbox``: its config, state, script, ...
    sandbox: Sandbox
    recorder: Recorder

    @property
    def script(self) -> Script:
        return self.sandbox.script

    @property
    def requests(self) -> list[httpx.Request]:
        return self.recorder.requests

    @property
    def tasks(self) -> dict[str, SandboxTask]:
        """Every task on the sandbox account, by task id."""
        return self.sandbox.state.tasks

    def client(self, *, api_key: bool = False, key_pair: bool = True, **kw: Any) -> KlingClient:
        """A client on this world's sandbox and clock, with AK/SK and, if asked, the API key."""
        kw.setdefault("transport", self.recorder)
        return KlingClient(
            access_key=AK if key_pair else None,
            secret_key=SK if key_pair else None,
            api_key=API_KEY if api_key else None,
            base_url=BASE,
            clock=self.clock,
            **kw,
        )

    def seed(
        self,
        product: str = "text2video",
        *,
        external_id: str | None = None,
        queue: float = 10,
        run: float = 60,
        fail: str | None = None,
        request: dict[str, Any] | None = None,
    ) -> SandboxTask:
        """A task on the account, made now without the client, queued ``queue`` and running
        ``run`` nominal seconds, then succeeding (or failing with ``fail``)."""
        p = get_product(product)
        if request is None:
            request = {"prompt": "a fox"}
            if p.name == NEW:
                request["settings"] = {"duration": 5}
        return self.sandbox.state.create(
            p,
            p.validate(request),
            external_id=external_id,
            callback_url=None,
            base_url=BASE,
            plan=Plan(queue=queue, run=run, fail=fail),
        )

    def payload(self, task: SandboxTask) -> dict[str, Any]:
        """``task`` as a query would answer it now (a scripted raw answer can start from it)."""
        return task_at(task, self.clock.time()).to_payload()

    def video_url(self, task: SandboxTask) -> str:
        return f"{BASE}/sandbox/media/{task.task_id}/{task.video_id}.mp4"

    def truth(self, path: str) -> Awaitable[Any]:
        return _truth(self.app, path)


async def _truth(app: Any, path: str) -> Any:
    async with httpx.AsyncClient(transport=SandboxTransport(app), base_url=BASE) as http:
        return (await http.get(path)).json()


def kling_world(*, queue: float = 10, run: float = 60, **config: Any) -> KlingWorld:
    """A sandbox with this test file's keys, on a manual clock; tasks created through it queue
    ``queue`` and run ``run`` nominal seconds, and none fails unless asked."""
    clock = ManualClock()
    timing = {"queue_p50": queue, "queue_p95": queue, "run_p50": run, "run_p95": run}
    fields: dict[str, Any] = {
        "access_keys": {AK: SK},
        "api_keys": (API_KEY,),
        "failure_rate": 0.0,
        "straggler_rate": 0.0,
        "slots": {Family.VIDEO: 100, Family.IMAGE: 100},
        "durations": dict.fromkeys(("video", "image", "try_on"), timing),
    }
    fields.update(config)
    app = create_app(SandboxConfig(**fields), clock=clock)
    recorder = Recorder(SandboxTransport(app), clock)
    return KlingWorld(clock=clock, app=app, sandbox=app.state.sandbox, recorder=recorder)


Handler = Callable[[httpx.Request], httpx.Response]


def answering(handler: Handler, *, api_key: bool = False, **kw: Any) -> KlingClient:
    """A client whose every request gets ``handler``'s answer: for answers no server gives
    (a network failure raised, a garbled body)."""
    return KlingClient(
        access_key=AK,
        secret_key=SK,
        api_key=API_KEY if api_key else None,
        base_url=BASE,
        transport=httpx.MockTransport(handler),
        clock=ManualClock(),
        **kw,
    )
