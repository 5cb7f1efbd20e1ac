"""Helpers for the web face's tests: settings, seeding the ledger, callback bodies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from klingwatch.clock import Clock, RealClock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor.service import Monitor
from klingwatch.operations import Operations
from klingwatch.server.app import create_app
from klingwatch.server.runner import AppServer
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source
from klingwatch.store.async_ledger import AsyncLedger

CALLBACK_TOKEN = "cb-token-for-tests"
API_TOKEN = "api-token-for-tests"
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="

AppFactory = Callable[..., FastAPI]


def app_for(
    ledger: Ledger,
    *,
    settings: Settings,
    clock: Clock | None = None,
    client: KlingClient | None = None,
    monitor: Monitor | None = None,
    **kw: Any,
) -> FastAPI:
    """The app on ``ledger`` (seen through its async boundary, as ``serve`` sees it)."""
    ops = Operations(
        settings=settings, ledger=AsyncLedger(ledger), clock=clock or RealClock(), client=client
    )
    return create_app(ops, monitor=monitor, **kw)


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"callback_token": CALLBACK_TOKEN}
    base.update(overrides)
    return Settings.load(**base)


def client_of(app: FastAPI, *, settle: bool = True, **kw: Any) -> httpx.AsyncClient:
    """A client of ``app`` over ASGI.

    With ``settle`` each answer is handed back only once the callback confirmations it started
    (which run after the answer, in tasks of their own) have ended, so tests see their effect.
    """

    async def wait_for_confirmations(response: httpx.Response) -> None:
        await app.state.klingwatch.callbacks.drain()

    hooks = {"response": [wait_for_confirmations]} if settle else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost", event_hooks=hooks, **kw
    )


def add_task(
    ledger: Ledger,
    n: int,
    *,
    batch: str = "b1",
    prompt: str | None = None,
    product: str = "text2video",
    model: str = "kling-v2-6",
    mode: str = "std",
    submitted: bool = True,
) -> int:
    """Queue task ``n`` (external id ``<batch>-<n>``); with ``submitted``, Kling took it."""
    result = ledger.add_tasks(
        batch,
        [
            NewTask(
                product=product,
                request={"prompt": prompt or f"prompt number {n}", "model_name": model},
                external_task_id=f"{batch}-{n}",
                model=model,
                mode=mode,
                duration="5",
            )
        ],
    )
    local_id = (result.added or result.existing)[0]
    if submitted:
        ledger.apply(
            Observation(
                status=LocalStatus.SUBMITTED,
                source=Source.CREATE,
                at=ledger_time(ledger),
                local_id=local_id,
                task_id=kling_id(n),
            )
        )
    return local_id


def end_task(
    ledger: Ledger,
    local_id: int,
    status: LocalStatus,
    *,
    msg: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Task ``local_id`` reaches final ``status``, as a get would report it."""
    ledger.apply(
        Observation(
            status=status,
            source=Source.GET,
            at=ledger_time(ledger),
            local_id=local_id,
            status_msg=msg,
            result=result,
        )
    )


def ledger_time(ledger: Ledger) -> float:
    return float(ledger.clock.time())


def kling_id(n: int) -> str:
    return f"86000000000000{n:04d}"


def legacy_body(
    n: int,
    status: str,
    *,
    batch: str = "b1",
    updated_ms: int = 1_767_225_700_000,
    msg: str = "",
    url: str = "http://media.test/v.mp4",
) -> dict[str, Any]:
    """A legacy (flat) callback body for task ``n``."""
    body: dict[str, Any] = {
        "task_id": kling_id(n),
        "task_status": status,
        "task_status_msg": msg,
        "task_info": {"external_task_id": f"{batch}-{n}"},
        "created_at": 1_767_225_600_000,
        "updated_at": updated_ms,
        "task_result": {},
    }
    if status == "succeed":
        body["task_result"] = {"videos": [{"id": f"v{n}", "url": url, "duration": "5.1"}]}
        body["final_unit_deduction"] = "1"
    return body


def tasks_body(
    n: int, status: str, *, batch: str = "b1", updated_ms: int = 1_767_225_700_000
) -> dict[str, Any]:
    """A new-standard (bare object) callback body for task ``n``."""
    body: dict[str, Any] = {
        "id": kling_id(n),
        "status": status,
        "message": "",
        "external_id": f"{batch}-{n}",
        "create_time": 1_767_225_600_000,
        "update_time": updated_ms,
        "outputs": [],
    }
    if status == "succeeded":
        body["outputs"] = [{"type": "video", "url": "http://media.test/n.mp4", "duration": "5"}]
    return body


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


class ThreadedServer:
    """The app under uvicorn on 127.0.0.1, port 0, in a thread."""

    def __init__(
        self, ledger: Ledger, *, bind_host: str | None = None, **overrides: object
    ) -> None:
        app = app_for(
            ledger,
            settings=settings(**overrides),
            clock=RealClock(),
            stream_interval=0.2,
            bind_host=bind_host,
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=5
        )
        self.server = AppServer(config, app)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:  # readiness, not timing: the socket is bound once true
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.server.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.request_stop()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()
