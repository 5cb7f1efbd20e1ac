"""The batch page's API: what it reports, and its writes under the guard's rules."""

from __future__ import annotations

from decimal import Decimal

import httpx
from serverkit import add_task

from klingwatch.store import Ledger, LocalStatus, Observation, Source


def _failed(ledger: Ledger, local_id: int, reason: str | None) -> None:
    ledger.apply(
        Observation(
            status=LocalStatus.FAILED,
            source=Source.GET,
            at=ledger.clock.time(),
            local_id=local_id,
            status_msg=reason,
        )
    )


async def test_the_batch_report_groups_failures_and_shows_the_cap(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    ids = [add_task(ledger, n) for n in range(5)]
    for local_id, reason in zip(ids, ["content risk", "content risk", None], strict=False):
        _failed(ledger, local_id, reason)
    ledger.set_cap("b1", Decimal(40))
    page = (await http.get("/api/batches/b1")).json()
    assert page["total"] == 5
    assert page["done"] == 3
    assert page["failure_reasons"] == [
        {"reason": "content risk", "tasks": 2},
        {"reason": "(no reason given)", "tasks": 1},
    ]
    assert page["max_units"] == "40"
    assert page["held"] == 0
    tasks = (await http.get("/api/batches/b1/tasks")).json()
    assert sorted(t["local_id"] for t in tasks) == sorted(ids)
    assert (await http.get("/api/batches/nope")).status_code == 404
    assert (await http.get("/api/batches/nope/tasks")).status_code == 404


async def test_retry_all_failed_needs_confirm_and_a_page_of_our_own(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    ids = [add_task(ledger, n) for n in range(3)]
    for local_id in ids[:2]:
        _failed(ledger, local_id, "boom")
    refused = await http.post("/api/batches/b1/retry-failed", json={})
    assert refused.status_code == 409
    assert "2 failed task(s)" in refused.json()["detail"]
    assert '{"confirm": true}' in refused.json()["detail"]
    # Another site's page cannot make a browser do it.
    foreign = await http.post(
        "/api/batches/b1/retry-failed",
        json={"confirm": True},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    done = await http.post("/api/batches/b1/retry-failed", json={"confirm": True})
    assert done.status_code == 201
    assert done.json()["queued"] == 2
    assert len(ledger.tasks(batch="b1", status=LocalStatus.QUEUED)) == 2


async def test_download_all_without_a_folder_says_how_to_set_one(
    http: httpx.AsyncClient, ledger: Ledger
) -> None:
    add_task(ledger, 1)
    answer = await http.post("/api/batches/b1/download")
    assert answer.status_code == 409
    assert "KLINGWATCH_DOWNLOAD_DIR" in answer.json()["detail"]


async def test_spend_per_day_as_the_cli_gives_it(http: httpx.AsyncClient, ledger: Ledger) -> None:
    add_task(ledger, 1)
    report = (await http.get("/api/spend", params={"by": "batch,day"})).json()
    assert report["by"] == ["batch", "day"]
    assert [r["batch"] for r in report["rows"]] == ["b1"]
    assert (await http.get("/api/spend", params={"by": "colour"})).status_code == 422
