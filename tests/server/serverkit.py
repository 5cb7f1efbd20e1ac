"""Helpers for the web face's tests: settings, seeding the ledger, callback bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from klingwatch.settings import Settings
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source

CALLBACK_TOKEN = "cb-token-for-tests"
API_TOKEN = "api-token-for-tests"
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="

AppFactory = Callable[..., FastAPI]


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
