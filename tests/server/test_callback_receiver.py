"""The callback receiver: what is believed, what is refused, and that nothing else changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from serverkit import (
    CALLBACK_TOKEN,
    SECRET,
    AppFactory,
    add_task,
    client_of,
    kling_id,
    legacy_body,
    raw,
    tasks_body,
)
from standardwebhooks import Webhook

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.server import callbacks
from klingwatch.store import Ledger, LocalStatus

URL = f"/callbacks/kling/{CALLBACK_TOKEN}"


@pytest.fixture(autouse=True)
def _patient_ack(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check what a delivery did, not how soon it was answered (that is
    test_ledger_lock.py's): on a loaded machine a write may pass ACK_WITHIN and answer
    "recording", a correct answer that hides the outcome under test."""
    monkeypatch.setattr(callbacks, "ACK_WITHIN", 10.0)


def signed_headers(
    body: bytes, at: float, *, secret: str = SECRET, msg_id: str = "msg-1"
) -> dict[str, str]:
    stamp = datetime.fromtimestamp(int(at), tz=UTC)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at)),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def snapshot(ledger: Ledger) -> tuple[list[Any], list[Any]]:
    """Everything a delivery could change: every task row and every event."""
    return ledger.tasks(), ledger.recent_events(limit=1000)


class KlingTruth:
    """A Kling that answers single gets with the true state; counts the gets."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        #: states to answer first, one per get, before ``states`` (a lagging read replica)
        self.stale: list[dict[str, Any]] = []
        self.gets = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        task_id = request.url.path.rsplit("/", 1)[-1]
        self.gets += 1
        data = self.stale.pop(0) if self.stale else self.states.get(task_id)
        if data is None:
            return httpx.Response(
                400, json={"code": 1201, "message": "Task not found", "request_id": "r"}
            )
        return httpx.Response(
            200, json={"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}
        )

    def client(self, clock: ManualClock) -> KlingClient:
        return KlingClient(
            access_key="ak",
            secret_key="sk",
            base_url="http://kling.test",
            transport=httpx.MockTransport(self.handler),
            clock=clock,
        )


async def test_a_signed_final_callback_is_recorded_at_once(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    body = raw(legacy_body(1, "succeed"))
    async with client_of(make_app(webhook_secret=SECRET)) as http:
        answer = await http.post(URL, content=body, headers=signed_headers(body, clock.time()))
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "applied"
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.SUCCEED
    assert task.result == {
        "videos": [{"id": "v1", "url": "http://media.test/v.mp4", "duration": 5.1}]
    }
    assert ledger.events(local)[-1].source == "callback"


async def test_forged_missing_and_stale_signatures_are_refused_and_change_nothing(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    add_task(ledger, 1)
    body = raw(legacy_body(1, "succeed"))
    before = snapshot(ledger)
    forged = signed_headers(
        body, clock.time(), secret="whsec_" + "Zm9yZ2VkZm9yZ2VkZm9yZ2VkZm9yZ2Vk"
    )
    stale = signed_headers(body, clock.time() - 3600)
    tampered = signed_headers(raw(legacy_body(1, "failed")), clock.time())
    async with client_of(make_app(webhook_secret=SECRET)) as http:
        for headers in (forged, stale, tampered, {"content-type": "application/json"}):
            answer = await http.post(URL, content=body, headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["error"] == "bad_signature"
    assert snapshot(ledger) == before


async def test_a_wrong_token_is_404_and_records_nothing(
    make_app: AppFactory, ledger: Ledger
) -> None:
    add_task(ledger, 1)
    before = snapshot(ledger)
    async with client_of(make_app(trust_unsigned_callbacks=True)) as http:
        answer = await http.post("/callbacks/kling/guessed", content=raw(legacy_body(1, "succeed")))
    assert answer.status_code == 404
    assert snapshot(ledger) == before


async def test_a_garbled_body_gets_a_clear_400_and_changes_nothing(
    make_app: AppFactory, ledger: Ledger
) -> None:
    add_task(ledger, 1)
    before = snapshot(ledger)
    async with client_of(make_app(trust_unsigned_callbacks=True)) as http:
        for body in (
            b"{not json",
            b"[1, 2]",
            raw({"hello": "world"}),
            raw(legacy_body(1, "exploded")),
        ):
            answer = await http.post(URL, content=body)
            assert answer.status_code == 400, body
            error = answer.json()
            assert error["error"] == "garbled_callback"
            assert error["detail"]
    assert snapshot(ledger) == before


async def test_enveloped_and_new_standard_bodies_both_parse(
    make_app: AppFactory, ledger: Ledger
) -> None:
    first = add_task(ledger, 1)
    second = add_task(ledger, 2)
    enveloped = {
        "code": 0,
        "message": "SUCCEED",
        "request_id": "x",
        "data": legacy_body(1, "processing"),
    }
    async with client_of(make_app()) as http:
        assert (await http.post(URL, content=raw(enveloped))).status_code == 200
        assert (await http.post(URL, content=raw(tasks_body(2, "processing")))).status_code == 200
    assert [ledger.task(i).status for i in (first, second)] == [LocalStatus.PROCESSING] * 2  # type: ignore[union-attr]


async def test_duplicates_and_a_late_stale_status_change_nothing(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    processing = raw(legacy_body(1, "processing", updated_ms=1_767_225_650_000))
    succeed = raw(legacy_body(1, "succeed", updated_ms=1_767_225_700_000))
    async with client_of(make_app(webhook_secret=SECRET)) as http:
        for i, body in enumerate((processing, succeed, succeed, processing)):
            headers = signed_headers(body, clock.time(), msg_id=f"m{i}")
            assert (await http.post(URL, content=body, headers=headers)).status_code == 200
        after_final = snapshot(ledger)
        # The same again, out of order: nothing moves.
        for i, body in enumerate((processing, succeed)):
            headers = signed_headers(body, clock.time(), msg_id=f"again{i}")
            answer = await http.post(URL, content=body, headers=headers)
            assert answer.json()["outcome"] == "unchanged"
    assert snapshot(ledger) == after_final
    timeline = [(e.from_status, e.to_status) for e in ledger.events(local)]
    assert timeline[-2:] == [
        (LocalStatus.SUBMITTED, LocalStatus.PROCESSING),
        (LocalStatus.PROCESSING, LocalStatus.SUCCEED),
    ]


async def test_an_unsigned_final_status_is_confirmed_with_one_get(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    kling = KlingTruth()
    kling.states[kling_id(1)] = legacy_body(1, "succeed")
    async with kling.client(clock) as client, client_of(make_app(client=client)) as http:
        answer = await http.post(URL, content=raw(legacy_body(1, "succeed")))
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "confirming"
    assert kling.gets == 1
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.SUCCEED
    assert ledger.events(local)[-1].detail == "unsigned callback, confirmed by get"


async def test_the_answer_does_not_wait_for_the_confirming_get(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    release = asyncio.Event()

    async def slow_kling(request: httpx.Request) -> httpx.Response:
        await release.wait()
        data = legacy_body(1, "succeed")
        return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "data": data})

    async with KlingClient(
        access_key="ak",
        secret_key="sk",
        base_url="http://kling.test",
        transport=httpx.MockTransport(slow_kling),
        clock=clock,
    ) as client:
        app = make_app(client=client)
        async with client_of(app, settle=False) as http:
            answer = await http.post(URL, content=raw(legacy_body(1, "succeed")))
            assert (answer.status_code, answer.json()["outcome"]) == (200, "confirming")
            task = ledger.task(local)
            assert task is not None
            assert task.status is LocalStatus.SUBMITTED  # not believed before Kling says so
            release.set()
            await app.state.klingwatch.callbacks.drain()
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.SUCCEED


async def test_a_forged_unsigned_final_status_is_not_believed(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    kling = KlingTruth()
    kling.states[kling_id(1)] = legacy_body(1, "processing")
    forged = raw(legacy_body(1, "failed", msg="forged"))
    async with kling.client(clock) as client, client_of(make_app(client=client)) as http:
        assert (await http.post(URL, content=forged)).status_code == 200
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.PROCESSING  # what Kling says, not what the caller said
    assert task.status_msg is None
    assert kling.gets == 3  # asked again a few seconds apart, in case Kling's reads lagged
    assert task.next_look_at == clock.time()  # and the poller looks next


async def test_a_final_status_kling_reports_a_moment_later_is_confirmed(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    kling = KlingTruth()
    kling.stale = [legacy_body(1, "processing")]
    kling.states[kling_id(1)] = legacy_body(1, "succeed")
    async with kling.client(clock) as client, client_of(make_app(client=client)) as http:
        await http.post(URL, content=raw(legacy_body(1, "succeed")))
    assert kling.gets == 2
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.SUCCEED


async def test_trusting_unsigned_callbacks_skips_the_get(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    kling = KlingTruth()
    async with (
        kling.client(clock) as client,
        client_of(make_app(client=client, trust_unsigned_callbacks=True)) as http,
    ):
        answer = await http.post(
            URL, content=raw(legacy_body(1, "failed", msg="Image pixel is invalid"))
        )
    assert answer.json()["outcome"] == "applied"
    assert kling.gets == 0
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.FAILED
    assert task.status_msg == "Image pixel is invalid"


async def test_without_a_client_an_unsigned_final_status_waits_for_the_poller(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    ledger.schedule([(local, clock.time() + 600)])
    async with client_of(make_app()) as http:
        await http.post(URL, content=raw(legacy_body(1, "succeed")))
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.SUBMITTED
    assert task.next_look_at is not None
    assert task.next_look_at <= clock.time()
    assert [t.local_id for t in ledger.due(clock.time())] == [local]


async def test_a_delivery_for_an_unknown_task_is_kept_as_an_orphan_event(
    make_app: AppFactory, ledger: Ledger
) -> None:
    async with client_of(make_app()) as http:
        answer = await http.post(URL, content=raw(legacy_body(7, "processing", batch="elsewhere")))
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "orphan"
    assert ledger.tasks() == []
    orphan = ledger.recent_events(limit=5)[-1]
    assert orphan.local_id is None
    assert orphan.to_status is LocalStatus.PROCESSING
    assert kling_id(7) in (orphan.detail or "")


async def test_callback_outcomes_are_counted_for_metrics(
    make_app: AppFactory, ledger: Ledger
) -> None:
    add_task(ledger, 1)
    async with client_of(make_app()) as http:
        await http.post(URL, content=raw(legacy_body(1, "processing")))
        await http.post(URL, content=raw(legacy_body(1, "processing")))
        await http.post(URL, content=b"garbage")
        await http.post("/callbacks/kling/nope", content=b"{}")
        text = (await http.get("/metrics")).text
    lines = {
        line
        for line in text.splitlines()
        if line.startswith("klingwatch_callback_deliveries_total")
    }
    assert lines == {
        'klingwatch_callback_deliveries_total{outcome="applied"} 1.0',
        'klingwatch_callback_deliveries_total{outcome="unchanged"} 1.0',
        'klingwatch_callback_deliveries_total{outcome="garbled"} 1.0',
        'klingwatch_callback_deliveries_total{outcome="wrong_token"} 1.0',
    }


async def test_a_confirmed_final_status_keeps_what_kling_said_not_what_was_posted(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    kling = KlingTruth()
    kling.states[kling_id(1)] = legacy_body(1, "succeed", url="http://kling.test/real.mp4")
    forged = raw(legacy_body(1, "succeed", url="http://evil.test/fake.mp4"))
    async with kling.client(clock) as client, client_of(make_app(client=client)) as http:
        await http.post(URL, content=forged)
    task = ledger.task(local)
    assert task is not None
    assert task.status is LocalStatus.SUCCEED
    assert task.result is not None
    assert task.result["videos"][0]["url"] == "http://kling.test/real.mp4"


async def test_an_unsigned_delivery_cannot_tie_a_queued_task_to_a_made_up_kling_id(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1, submitted=False)
    kling = KlingTruth()  # knows no task at all
    async with kling.client(clock) as client, client_of(make_app(client=client)) as http:
        answer = await http.post(URL, content=raw(legacy_body(1, "submitted")))
    assert answer.json()["outcome"] == "confirming"
    task = ledger.task(local)
    assert task is not None
    assert (task.status, task.task_id) == (LocalStatus.QUEUED, None)  # still to be sent


async def test_an_unsigned_delivery_pairing_a_task_with_another_kling_task_is_refused(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    mine = add_task(ledger, 1, submitted=False)
    kling = KlingTruth()
    someone_elses = legacy_body(2, "processing", batch="other")
    kling.states[kling_id(2)] = someone_elses
    forged = legacy_body(2, "processing")  # Kling id of task 2, our external id b1-2 ...
    forged["task_info"] = {"external_task_id": "b1-1"}  # ... claimed to be ours
    async with kling.client(clock) as client, client_of(make_app(client=client)) as http:
        await http.post(URL, content=raw(forged))
    task = ledger.task(mine)
    assert task is not None
    assert (task.status, task.task_id) == (LocalStatus.QUEUED, None)


async def test_a_callback_that_outruns_the_create_answer_is_confirmed_and_recorded(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1, submitted=False)
    kling = KlingTruth()
    kling.states[kling_id(1)] = legacy_body(1, "submitted")
    async with kling.client(clock) as client, client_of(make_app(client=client)) as http:
        await http.post(URL, content=raw(legacy_body(1, "submitted")))
    task = ledger.task(local)
    assert task is not None
    assert (task.status, task.task_id) == (LocalStatus.SUBMITTED, kling_id(1))
