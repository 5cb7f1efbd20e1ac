"""The JSON API: what a script sees, filtered and paged, and the three actions."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from serverkit import AppFactory, add_task, client_of, kling_id, legacy_body

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor import gates
from klingwatch.store import Ledger, LocalStatus, Observation, Source


def finish(
    ledger: Ledger, local_id: int, status: LocalStatus, at: float, msg: str | None = None
) -> None:
    ledger.apply(
        Observation(status=LocalStatus.PROCESSING, source=Source.GET, at=at - 60, local_id=local_id)
    )
    ledger.apply(
        Observation(
            status=status,
            source=Source.GET,
            at=at,
            local_id=local_id,
            status_msg=msg,
            kling_updated_ms=int(at * 1000),
            result={"videos": [{"id": "v", "url": "http://media.test/v.mp4", "duration": 5.0}]}
            if status is LocalStatus.SUCCEED
            else None,
        )
    )


async def test_tasks_are_filtered_and_paged_newest_first(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    for n in range(1, 8):
        add_task(ledger, n, prompt=f"a {'cat' if n % 2 else 'dog'} number {n}")
        clock.advance(10)
    add_task(ledger, 8, batch="other", model="kling-v1-6", prompt="a cat in another batch")
    page = (await http.get("/api/tasks", params={"limit": 3})).json()
    assert page["total"] == 8
    assert [t["local_id"] for t in page["items"]] == [8, 7, 6]
    second = (await http.get("/api/tasks", params={"limit": 3, "offset": 3})).json()
    assert [t["local_id"] for t in second["items"]] == [5, 4, 3]

    cats = (await http.get("/api/tasks", params={"q": "CAT", "batch": "b1"})).json()
    assert [t["local_id"] for t in cats["items"]] == [7, 5, 3, 1]
    assert cats["items"][0]["prompt"] == "a cat number 7"
    by_model = (await http.get("/api/tasks", params={"model": "kling-v1-6"})).json()
    assert [t["external_task_id"] for t in by_model["items"]] == ["other-8"]
    start = page["items"][-1]["queued_at_ms"] - 50_000  # task 1, queued 50 s before task 6
    window = (
        await http.get(
            "/api/tasks", params={"since_ms": start + 15_000, "until_ms": start + 45_000}
        )
    ).json()
    assert [t["local_id"] for t in window["items"]] == [5, 4, 3]


async def test_status_filters_combine(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    ids = [add_task(ledger, n) for n in range(1, 5)]
    finish(ledger, ids[0], LocalStatus.SUCCEED, clock.time())
    finish(ledger, ids[1], LocalStatus.FAILED, clock.time(), "Image pixel is invalid")
    answer = await http.get("/api/tasks", params=[("status", "failed"), ("status", "succeed")])
    assert sorted(t["local_id"] for t in answer.json()["items"]) == ids[:2]
    bad = await http.get("/api/tasks", params={"status": "finished"})
    assert bad.status_code == 422


async def test_one_task_has_its_timeline_and_is_found_by_any_id(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    clock.advance(30)
    finish(ledger, local, LocalStatus.SUCCEED, clock.time())
    ledger.record_download(
        local,
        0,
        url="http://media.test/v.mp4",
        path="/data/b1-1_0.mp4",
        size=10,
        sha256="ab",
        state="complete",
        error=None,
        at=clock.time(),
    )
    for ref in (str(local), "b1-1", kling_id(1)):
        task = (await http.get(f"/api/tasks/{ref}")).json()
        assert task["local_id"] == local
    assert [(e["from_status"], e["to_status"]) for e in task["timeline"]] == [
        (None, "queued"),
        ("queued", "submitted"),
        ("submitted", "processing"),
        ("processing", "succeed"),
    ]
    # The download is recorded at a path that holds no file: the video plays from Kling.
    assert task["media"] == [
        {
            "kind": "video",
            "index": 0,
            "url": "http://media.test/v.mp4",
            "kling_url": "http://media.test/v.mp4",
            "local": False,
            "duration": 5.0,
        }
    ]
    assert task["downloads"][0]["path"] == "/data/b1-1_0.mp4"
    assert task["downloads"][0]["file_url"] is None
    assert task["expires_at_ms"] == task["finished_at_ms"] + 30 * 86400 * 1000
    missing = await http.get("/api/tasks/no-such-task")
    assert missing.status_code == 404
    assert "no-such-task" in missing.json()["detail"]


async def test_batches_show_progress_and_an_eta(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    ids = [add_task(ledger, n) for n in range(1, 6)]
    add_task(ledger, 9, batch="later", submitted=False)
    clock.advance(60)
    finish(ledger, ids[0], LocalStatus.SUCCEED, clock.time())
    clock.advance(30)
    finish(ledger, ids[1], LocalStatus.FAILED, clock.time(), "content risk")
    clock.advance(30)
    finish(ledger, ids[2], LocalStatus.SUCCEED, clock.time())
    batches = {b["name"]: b for b in (await http.get("/api/batches")).json()}
    b1 = batches["b1"]
    assert (b1["total"], b1["done"], b1["succeeded"], b1["failed"]) == (5, 3, 2, 1)
    assert b1["progress"] == 0.6
    assert b1["rate_per_min"] == 3.0  # three finishes over the last minute of work
    assert b1["eta_seconds"] == 40.0  # two left at three a minute
    # Nothing finished yet: the learned (here cold-start) durations of one task stand in.
    assert batches["later"]["counts"]["queued"] == 1
    assert batches["later"]["rate_per_min"] is None
    assert batches["later"]["eta_seconds"] > 0


async def test_stats_and_stuck_match_the_ledger(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    ids = [add_task(ledger, n) for n in range(1, 4)]
    finish(ledger, ids[0], LocalStatus.SUCCEED, clock.time())
    ledger.set_stuck(ids[1], True, "processing for 3x its p95", clock.time())
    stats = (await http.get("/api/stats")).json()
    assert stats["counts"] == {s.value: n for s, n in ledger.counts().items()}
    assert stats["total"] == 3
    assert stats["stuck"] == 1
    assert stats["slots_in_use"] == {"video": 2}
    assert stats["by_product"] == {"text2video": {"kling-v2-6": {"submitted": 2, "succeed": 1}}}
    assert stats["durations"][0]["n"] == 1
    assert stats["engine"] is None  # no engine and no Kling client in this app
    stuck = (await http.get("/api/stuck")).json()
    assert [(t["local_id"], t["stuck_reason"]) for t in stuck] == [
        (ids[1], "processing for 3x its p95")
    ]


async def test_events_page_forward_from_an_id(http: httpx.AsyncClient, ledger: Ledger) -> None:
    add_task(ledger, 1)
    first = (await http.get("/api/events")).json()
    assert [e["to_status"] for e in first["items"]] == ["queued", "submitted"]
    assert first["items"][0]["external_task_id"] == "b1-1"
    add_task(ledger, 2)
    more = (await http.get("/api/events", params={"after_id": first["last_id"]})).json()
    assert [(e["external_task_id"], e["to_status"]) for e in more["items"]] == [
        ("b1-2", "queued"),
        ("b1-2", "submitted"),
    ]


async def test_retry_queues_a_new_task_linked_to_the_old(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    refused = await http.post(f"/api/tasks/{local}/retry")
    assert refused.status_code == 409
    assert "only a finished task" in refused.json()["detail"]
    finish(ledger, local, LocalStatus.FAILED, clock.time(), "internal error")
    answer = await http.post(f"/api/tasks/{local}/retry")
    assert answer.status_code == 201
    new = answer.json()["task"]
    assert (new["status"], new["retry_of"], new["prompt"]) == ("queued", local, "prompt number 1")
    assert ledger.task(new["local_id"]) is not None


async def test_track_adopts_a_task_created_elsewhere(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    answer = await http.post(
        "/api/track", json={"task_id": "870000000000000001", "batch": "adopted"}
    )
    assert answer.status_code == 201
    task = answer.json()["task"]
    assert (task["status"], task["task_id"], task["batch"]) == (
        "submitted",
        "870000000000000001",
        "adopted",
    )
    again = await http.post(
        "/api/track", json={"task_id": "870000000000000001", "batch": "adopted"}
    )
    assert again.json()["local_id"] == task["local_id"]
    unknown = await http.post("/api/track", json={"task_id": "1", "product": "text2music"})
    assert unknown.status_code == 422
    assert "text2music" in unknown.json()["detail"]


async def test_with_a_kling_client_track_reads_the_task_first(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    def kling(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/870000000000000009"):
            data = legacy_body(9, "processing")
            data["task_id"] = "870000000000000009"
            return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "data": data})
        return httpx.Response(400, json={"code": 1201, "message": "Task not found"})

    transport = httpx.MockTransport(kling)
    async with (
        KlingClient(
            access_key="ak",
            secret_key="sk",
            base_url="http://kling.test",
            transport=transport,
            clock=clock,
        ) as client,
        client_of(make_app(client=client)) as http,
    ):
        found = await http.post("/api/track", json={"task_id": "870000000000000009"})
        missing = await http.post("/api/track", json={"task_id": "870000000000000404"})
    assert found.status_code == 201
    assert found.json()["task"]["status"] == "processing"  # as Kling said, not just "submitted"
    assert missing.status_code == 404
    assert "Kling has no such task" in missing.json()["detail"]
    assert [t.task_id for t in ledger.tasks()] == ["870000000000000009"]


async def test_resume_lifts_a_pause_and_its_alert(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    gates.pause(
        ledger, gates.PauseState(reason="Account balance not enough", at=clock.time(), code=1102)
    )
    stats = (await http.get("/api/stats")).json()
    assert stats["paused"] is True
    assert (stats["pause_code"], stats["pack_exhausted"]) == (1102, True)
    assert stats["pause_reason"] == "Account balance not enough"
    assert [a["kind"] for a in stats["alerts"]] == ["submissions_paused"]
    answer = (await http.post("/api/resume")).json()
    assert answer == {"paused": False, "cleared_alerts": ["submissions_paused"]}
    stats = (await http.get("/api/stats")).json()
    assert (stats["paused"], stats["pack_exhausted"], stats["alerts"]) == (False, False, [])


async def test_the_openapi_schema_lists_every_route(http: httpx.AsyncClient) -> None:
    paths = set((await http.get("/openapi.json")).json()["paths"])
    assert {
        "/api/batches",
        "/api/tasks",
        "/api/tasks/{ref}",
        "/api/stats",
        "/api/stuck",
        "/api/tasks/{ref}/retry",
        "/api/track",
        "/api/resume",
    } <= paths
    assert (await http.get("/docs")).status_code == 200


async def test_throughput_shows_the_shortest_window_holding_the_days_work(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    ids = [add_task(ledger, n) for n in range(1, 4)]
    finish(ledger, ids[0], LocalStatus.FAILED, clock.time(), "content risk")
    clock.advance(200)
    finish(ledger, ids[1], LocalStatus.SUCCEED, clock.time())
    clock.advance(280)
    finish(ledger, ids[2], LocalStatus.SUCCEED, clock.time())
    clock.advance(20)
    tp = (await http.get("/api/stats")).json()["throughput"]
    # 500 s of work: a 10-minute window of 30 buckets of 20 s, ending now.
    assert (tp["bucket_seconds"], tp["start_at_ms"]) == (20.0, round((clock.time() - 600) * 1000))
    assert (sum(tp["succeeded"]), sum(tp["failed"])) == (2, 1)
    assert tp["failed"][5] == 1  # 500 s ago
    assert tp["succeeded"][15] == 1  # 300 s ago
    assert tp["succeeded"][29] == 1  # 20 s ago
    clock.advance(2 * 3600)
    later = (await http.get("/api/stats")).json()["throughput"]
    assert later["bucket_seconds"] == 6 * 3600 / 30


async def test_retrying_a_succeeded_task_needs_force_because_it_pays_again(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    finish(ledger, local, LocalStatus.SUCCEED, clock.time())
    refused = await http.post(f"/api/tasks/{local}/retry", json={})
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "task 'b1-1' succeeded: retrying it queues a new task that Kling bills again; "
        'add "force": true to the JSON body to retry it anyway'
    }
    assert len(ledger.tasks()) == 1
    forced = await http.post(f"/api/tasks/{local}/retry", json={"force": True})
    assert forced.status_code == 201
    assert forced.json()["task"]["external_task_id"] == "b1-1-r1"


async def test_what_the_fuzzer_found_answers_4xx_with_a_reason(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    add_task(ledger, 1)
    huge_offset = await http.get("/api/tasks", params={"offset": "93740011967061048688640"})
    assert huge_offset.status_code == 422
    assert huge_offset.json() == {
        "detail": "query.offset: Input should be less than or equal to 2147483647"
    }
    huge_after = await http.get("/api/events", params={"after_id": "94992290791550156275712"})
    assert huge_after.status_code == 422
    assert huge_after.json()["detail"].startswith("query.after_id: Input should be less than")
    superscript = await http.post("/api/tasks/%C2%B2/retry", json={})
    assert superscript.status_code == 404
    assert superscript.json() == {"detail": "no task '²' in the ledger"}
    nul = await http.get("/api/tasks", params={"batch": "b\x001"})
    assert nul.status_code == 422
    assert nul.json()["detail"].startswith("query.batch: String should match pattern")
    empty = await http.post("/api/track", json={"task_id": ""})
    assert empty.status_code == 422
    assert empty.json() == {"detail": "body.task_id: String should have at least 1 character"}


async def test_every_instant_is_given_as_epoch_ms_and_iso_8601(
    http: httpx.AsyncClient, ledger: Ledger, clock: ManualClock
) -> None:
    local = add_task(ledger, 1)
    finish(ledger, local, LocalStatus.SUCCEED, clock.time())
    task = (await http.get(f"/api/tasks/{local}")).json()
    stats = (await http.get("/api/stats")).json()
    batch = (await http.get("/api/batches")).json()[0]
    event = (await http.get("/api/events")).json()["items"][0]
    for record in (task, stats, batch, event, task["timeline"][-1]):
        pairs = [k[: -len("_ms")] for k in record if k.endswith("_ms")]
        assert pairs, record
        for name in pairs:
            ms, iso = record[f"{name}_ms"], record[f"{name}_iso"]
            if ms is None:
                assert iso is None, name
                continue
            assert isinstance(ms, int), name
            assert iso == datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(
                timespec="milliseconds"
            ).replace("+00:00", "Z"), name
        # No instant in another unit or under a name that does not say its unit.
        assert not [k for k in record if k.endswith("_at") or k == "at"], record
    assert task["finished_at_ms"] == round(clock.time() * 1000)
    assert task["kling_updated_at_ms"] == int(clock.time() * 1000)
    assert task["kling_updated_at_iso"].endswith("Z")
