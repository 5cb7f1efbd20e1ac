"""``/metrics`` scraped and its figures checked against the ledger."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import httpx
from prometheus_client.parser import text_string_to_metric_families
from serverkit import AppFactory, add_task, client_of

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.monitor import gates
from klingwatch.server.metrics import BATCH_SERIES
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source


def scrape(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}``."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def observe(ledger: Ledger, local_id: int, status: LocalStatus, at: float, **kw: object) -> None:
    ledger.apply(Observation(status=status, source=Source.GET, at=at, local_id=local_id, **kw))  # type: ignore[arg-type]


async def test_metrics_figures_match_the_ledger(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    ids = [add_task(ledger, n) for n in range(1, 6)]
    add_task(ledger, 6, product="image-generation", model="kling-v2", submitted=False)
    t0 = clock.time()
    observe(ledger, ids[0], LocalStatus.PROCESSING, t0 + 20)
    observe(ledger, ids[0], LocalStatus.SUCCEED, t0 + 100, kling_updated_ms=int((t0 + 95) * 1000))
    observe(ledger, ids[1], LocalStatus.PROCESSING, t0 + 40)
    observe(ledger, ids[1], LocalStatus.SUCCEED, t0 + 400, kling_updated_ms=int((t0 + 398) * 1000))
    observe(ledger, ids[2], LocalStatus.FAILED, t0 + 50, status_msg="content risk")
    observe(ledger, ids[3], LocalStatus.PROCESSING, t0 + 60)
    ledger.set_stuck(ids[4], True, "submitted for too long", t0 + 70)
    clock.advance(500)

    async with client_of(make_app()) as http:
        m = scrape((await http.get("/metrics")).text)

    tasks = {
        dict(k)["status"] + "/" + dict(k)["product"]: v for k, v in m["klingwatch_tasks"].items()
    }
    by_status: Counter[str] = Counter()
    for r in ledger.tasks():
        by_status[f"{r.status.value}/{r.product}"] += 1
    assert tasks == dict(by_status)
    assert m["klingwatch_stuck_tasks"][()] == 1
    slots = {dict(k)["family"]: v for k, v in m["klingwatch_slots_in_use"].items()}
    assert slots["video"] == ledger.active_count("video") - 0  # submitted + processing, no unknown
    assert slots["image"] == 0

    # Every recorded status change is counted once, by (from, to, source).
    changes: Counter[tuple[str, str, str]] = Counter()
    for e in ledger.recent_events(limit=1000):
        if e.local_id is not None and e.from_status != e.to_status:
            changes[
                (e.from_status.value if e.from_status else "none", e.to_status.value, e.source)
            ] += 1
    transitions = {
        (dict(k)["from_status"], dict(k)["to_status"], dict(k)["source"]): v
        for k, v in m["klingwatch_transitions_total"].items()
    }
    assert transitions == changes

    # Run time, processing -> Kling's final update: 75 s and 358 s; lag from the same two tasks.
    run = {dict(k).get("le"): v for k, v in m["klingwatch_run_seconds_bucket"].items()}
    assert run["60.0"] == 0
    assert run["120.0"] == 1
    assert run["600.0"] == 2
    assert run["+Inf"] == 2
    assert sum(m["klingwatch_run_seconds_sum"].values()) == 75.0 + 358.0
    lag = m["klingwatch_detection_lag_seconds_sum"]
    assert sum(lag.values()) == 5.0 + 2.0
    assert m["klingwatch_submissions_paused"][()] == 0


async def test_pause_alerts_and_client_requests_are_exported(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    gates.pause(ledger, gates.PauseState(reason="balance", at=clock.time(), code=1102))

    def kling(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"code": 1302, "message": "rate limit", "request_id": "r"})

    async with KlingClient(
        access_key="ak",
        secret_key="sk",
        base_url="http://kling.test",
        transport=httpx.MockTransport(kling),
        clock=clock,
    ) as client:
        client.stats.record("GET", "/v1/videos/text2video/{id}", ("429", "1302"))
        async with client_of(make_app(client=client)) as http:
            m = scrape((await http.get("/metrics")).text)
            engine = (await http.get("/api/stats")).json()["engine"]
    assert (engine["running"], engine["requests"]) == (False, 1)
    assert m["klingwatch_submissions_paused"][()] == 1
    assert m["klingwatch_pack_exhausted"][()] == 1
    assert m["klingwatch_alert_active"] == {(("kind", "submissions_paused"),): 1}
    assert m["klingwatch_kling_requests_total"] == {
        (("method", "GET"), ("route", "/v1/videos/text2video/{id}")): 1
    }
    assert m["klingwatch_kling_responses_total"] == {(("code", "1302"), ("status", "429")): 1}


async def test_results_kling_deletes_soon_and_not_downloaded_count_as_expiring(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    video = {"videos": [{"id": "v", "url": "http://media.test/v.mp4"}]}
    old, kept, fresh = (add_task(ledger, n) for n in (1, 2, 3))
    for local in (old, kept):
        observe(
            ledger,
            local,
            LocalStatus.SUCCEED,
            clock.time(),
            result=video,
            kling_updated_ms=int(clock.time() * 1000),
        )
    ledger.record_download(
        kept,
        0,
        url="http://media.test/v.mp4",
        path="/d/v.mp4",
        size=1,
        sha256="x",
        state="complete",
        error=None,
        at=clock.time(),
    )
    clock.advance(27 * 86400)  # three days before Kling deletes them
    observe(
        ledger,
        fresh,
        LocalStatus.SUCCEED,
        clock.time(),
        result=video,
        kling_updated_ms=int(clock.time() * 1000),
    )
    async with client_of(make_app()) as http:
        m = scrape((await http.get("/metrics")).text)
        stats = (await http.get("/api/stats")).json()
    assert m["klingwatch_downloads_expiring"][()] == 1
    assert stats["expiring_downloads"] == 1


async def test_spend_and_budget_caps_are_exported_with_bounded_labels(
    make_app: AppFactory, ledger: Ledger, clock: ManualClock
) -> None:
    ledger.ensure_batch("capped")
    ledger.set_cap("capped", Decimal(2))
    ids = ledger.add_tasks(
        "capped",
        [
            NewTask(
                "text2video",
                {"prompt": f"p{i}"},
                f"c-{i}",
                model="kling-v1",
                mode="pro",
                units_estimated="1.5",
            )
            for i in range(3)
        ],
    ).added
    assert ledger.mark_sending(ids, clock.time()).marked == ids[:1]
    observe(
        ledger,
        ids[0],
        LocalStatus.SUCCEED,
        clock.time() + 60,
        units="3.5",
        cash_amount="0.2",
        cash_currency="USD",
    )
    # Many old batches: only the newest get series of their own.
    for n in range(BATCH_SERIES + 5):
        clock.advance(1)
        add_task(ledger, n, batch=f"old-{n:02d}", submitted=False)

    async with client_of(make_app()) as http:
        m = scrape((await http.get("/metrics")).text)

    spent = m["klingwatch_units_spent_total"]
    assert spent[(("mode", "pro"), ("model", "kling-v1"), ("product", "text2video"))] == 3.5
    assert sum(spent.values()) == 3.5
    assert m["klingwatch_cash_spent_total"] == {(("currency", "USD"),): 0.2}
    estimated = m["klingwatch_units_estimated_total"]
    assert estimated[(("mode", "pro"), ("model", "kling-v1"), ("product", "text2video"))] == 4.5
    assert m["klingwatch_batch_units_cap"] == {(("batch", "capped"),): 2.0}
    assert m["klingwatch_batch_units_sent_estimate"] == {(("batch", "capped"),): 1.5}
    assert m["klingwatch_batch_tasks_held"] == {(("batch", "capped"),): 2.0}
    # Per-batch series: the newest batches, and "capped" (older than them all) because its cap
    # holds tasks now.
    batches = {dict(k)["batch"] for k in m["klingwatch_batch_units_estimated"]}
    assert len(batches) == BATCH_SERIES + 1
    assert "capped" in batches
    assert "old-00" not in batches
    assert f"old-{BATCH_SERIES + 4:02d}" in batches
