"""Callbacks delivered in-process into a receiver app, on the manual clock."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sandboxkit import SandboxFactory, client_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from klingwatch.clock import ManualClock
from klingwatch.kling.errors import WebhookVerificationError
from klingwatch.kling.webhooks import parse_callback, verify_signature
from klingwatch.sandbox.runtime import Sandbox

HOOK = "http://receiver.test/hook"
SECRET = "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0MTI="


@dataclass
class Receiver:
    """A callback receiver app that records every delivery; fails the first ``failures``."""

    failures: int = 0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.got.append((dict(request.headers), await request.body()))
            if self.failures > 0:
                self.failures -= 1
                return Response(b"busy", status_code=503)
            return Response(b"ok")

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.got]

    def statuses(self) -> list[str]:
        out = []
        for body in self.bodies():
            task = body.get("data", body)
            out.append(task.get("task_status") or task.get("status"))
        return out


def make(make_app: SandboxFactory, receiver: Receiver, **config: Any) -> Starlette:
    return make_app(callback_transport=httpx.ASGITransport(app=receiver.app()), **config)


async def run_to_end(app: Starlette, clock: ManualClock, seconds: float = 200) -> None:
    """Move the clock one second at a time, delivering what falls due."""
    sandbox: Sandbox = app.state.sandbox
    for _ in range(int(seconds)):
        clock.advance(1)
        await sandbox.callbacks.deliver_due()


async def create(app: Starlette, path: str = "/v1/videos/text2video", **body: Any) -> str:
    async with client_for(app) as api:
        if path.startswith("/v1"):
            body = {"prompt": "x", "callback_url": HOOK, **body}
        else:
            body = {"prompt": "x", "options": {"callback_url": HOOK}, **body}
        r = await api.post(path, json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return str(data.get("task_id") or data.get("id"))


async def test_every_transition_is_delivered_flat_in_order(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    app = make(make_app, receiver)
    task_id = await create(app, external_task_id="cb-1")
    await run_to_end(app, clock)
    assert receiver.statuses() == ["submitted", "processing", "succeed"]
    last = receiver.bodies()[-1]
    assert last["task_id"] == task_id
    assert last["task_info"] == {"external_task_id": "cb-1"}
    assert last["final_unit_deduction"] == "1.5"
    assert last["task_result"]["videos"][0]["url"].endswith(".mp4")
    assert parse_callback(receiver.got[-1][1]).is_terminal


async def test_terminal_only_mode_sends_one_delivery(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, callbacks="terminal")
    await create(app)
    await run_to_end(app, clock)
    assert receiver.statuses() == ["succeed"]


async def test_legacy_callbacks_can_be_enveloped(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, callback_envelope="enveloped", callbacks="terminal")
    task_id = await create(app)
    await run_to_end(app, clock)
    body = receiver.bodies()[0]
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    assert body["data"]["task_id"] == task_id
    assert parse_callback(receiver.got[0][1]).id == task_id


async def test_new_standard_callbacks_are_the_bare_task_object(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, callbacks="terminal")
    task_id = await create(app, "/text-to-video/kling-2.6")
    await run_to_end(app, clock)
    body = receiver.bodies()[0]
    assert body["id"] == task_id
    assert body["status"] == "succeeded"
    assert "task_id" not in body


async def test_signed_deliveries_verify_with_the_secret(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, webhook_secret=SECRET)
    await create(app)
    await run_to_end(app, clock)
    assert len(receiver.got) == 3
    for headers, body in receiver.got:
        verify_signature(SECRET, headers, body, now=clock.time())
    headers, body = receiver.got[0]
    with pytest.raises(WebhookVerificationError):
        verify_signature(SECRET, headers, body + b" ", now=clock.time())


NEW_SECRET = "whsec_bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0bmV3MTI="


@pytest.mark.parametrize("given", [f"{SECRET} {NEW_SECRET}", [SECRET, NEW_SECRET]])
async def test_a_rotation_signs_with_every_secret_at_once(
    make_app: SandboxFactory, clock: ManualClock, given: Any
) -> None:
    # kling-get-started-callbacks.md: during a rotation "the webhook-signature header may contain
    # multiple signatures", space-separated; a receiver with either secret verifies it.
    receiver = Receiver()
    app = make(make_app, receiver, webhook_secret=given, callbacks="terminal")
    await create(app)
    await run_to_end(app, clock)
    ((headers, body),) = receiver.got

    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    verify_signature(SECRET, headers, body, now=clock.time())
    verify_signature(NEW_SECRET, headers, body, now=clock.time())
    with pytest.raises(WebhookVerificationError):
        verify_signature(
            "whsec_" + "b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcjEy", headers, body, now=clock.time()
        )


async def test_a_failing_receiver_is_retried_with_backoff(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver(failures=2)
    app = make(make_app, receiver, callbacks="terminal", callback_retry_backoff=5.0)
    task_id = await create(app)
    await run_to_end(app, clock)
    assert receiver.statuses() == ["succeed"] * 3
    async with client_for(app) as api:
        truth = (await api.get(f"/sandbox/tasks/{task_id}")).json()
        log = (await api.get("/sandbox/callbacks")).json()
    assert truth["callbacks"] == {"planned": 1, "attempts": 3, "delivered": 1}
    assert [e["outcome"] for e in log["log"]] == ["http 503", "http 503", "http 200"]
    assert log["counts"]["failed_attempts"] == 2


async def test_a_receiver_that_never_answers_well_is_given_up_on(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver(failures=100)
    app = make(make_app, receiver, callbacks="terminal", callback_retries=2)
    await create(app)
    await run_to_end(app, clock, seconds=400)
    assert len(receiver.got) == 3
    assert app.state.sandbox.callbacks.counts["gave_up"] == 1


async def test_drop_and_duplicate_knobs(make_app: SandboxFactory, clock: ManualClock) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, callback_drop_rate=1.0)
    await create(app)
    await run_to_end(app, clock)
    assert receiver.got == []
    assert app.state.sandbox.callbacks.counts["dropped"] == 3

    twice = Receiver()
    app = make(
        make_app, twice, callback_duplicate_rate=1.0, callbacks="terminal", webhook_secret=SECRET
    )
    await create(app)
    await run_to_end(app, clock)
    assert twice.statuses() == ["succeed", "succeed"]
    # A duplicate is the same delivery again: same webhook-id, so receivers can dedupe.
    assert twice.got[0][0]["webhook-id"] == twice.got[1][0]["webhook-id"]


async def test_reorder_delivers_the_end_before_processing(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, callback_reorder_rate=1.0)
    await create(app)
    await run_to_end(app, clock)
    assert receiver.statuses() == ["submitted", "succeed", "processing"]


async def test_delay_holds_deliveries_back(make_app: SandboxFactory, clock: ManualClock) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, callback_delay=30.0, callbacks="terminal")
    await create(app)
    await run_to_end(app, clock, seconds=90)  # the task ends at 70 s
    assert receiver.got == []
    await run_to_end(app, clock, seconds=20)
    assert receiver.statuses() == ["succeed"]


async def test_the_background_loop_delivers_on_its_own(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    app = make(make_app, receiver, callbacks="terminal")
    sandbox: Sandbox = app.state.sandbox
    await create(app)
    clock.advance(100)
    assert sandbox.callbacks.pending() == 1
    runner = asyncio.create_task(sandbox.callbacks.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0)
            if receiver.got:
                break
    finally:
        runner.cancel()
    assert receiver.statuses() == ["succeed"]


async def test_a_task_that_never_queues_reports_no_submitted_stage(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    receiver = Receiver()
    no_queue = {"queue_p50": 0, "queue_p95": 0, "run_p50": 30, "run_p95": 30}
    app = make(make_app, receiver, durations={"video": no_queue})
    await create(app)
    await run_to_end(app, clock)
    assert receiver.statuses() == ["processing", "succeed"]
