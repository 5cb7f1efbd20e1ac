"""One ETA: the rule, and ``status``, the live view and the dashboard agreeing on it."""

from __future__ import annotations

from pathlib import Path

import httpx

from klingwatch.cli.live import snapshot
from klingwatch.cli.status import gather
from klingwatch.clock import ManualClock
from klingwatch.monitor.eta import MIN_FINISHES, Basis, Progress, estimate, progress
from klingwatch.operations import Operations
from klingwatch.server.app import create_app
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LocalStatus, NewTask, Observation, Source
from klingwatch.store.async_ledger import AsyncLedger

T0 = 1_767_225_600.0


def test_a_finished_batch_is_due_now() -> None:
    assert estimate(Progress(T0, 0, 0, None, None)).basis is Basis.DONE


def test_recent_finishes_give_a_throughput_estimate() -> None:
    # 6 finished in the last 10 minutes (the batch's first finish): 0.6 a minute; 12 left.
    eta = estimate(Progress(T0, 12, 6, T0 - 600, by_durations=30.0))
    assert eta.basis is Basis.THROUGHPUT
    assert eta.per_minute == 0.6
    assert eta.seconds == 1200.0


def test_before_enough_finishes_learned_durations_stand_in() -> None:
    eta = estimate(Progress(T0, 12, MIN_FINISHES - 1, T0 - 10, by_durations=95.5))
    assert (eta.basis, eta.seconds) == (Basis.DURATIONS, 95.5)
    assert estimate(Progress(T0, 12, 0, None, None)).basis is Basis.UNKNOWN


def _ledger(tmp_path: Path, clock: ManualClock) -> Ledger:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    tasks = [NewTask("text2video", {"prompt": f"p{i}"}, f"t{i}", mode="std") for i in range(20)]
    ledger.add_tasks("b", tasks)
    for i in range(20):
        ledger.apply(
            Observation(
                LocalStatus.SUBMITTED,
                Source.CREATE,
                T0 + i,
                external_task_id=f"t{i}",
                task_id=str(i),
            )
        )
    for i in range(8):  # eight finished over the last five minutes
        ledger.apply(
            Observation(
                LocalStatus.SUCCEED, Source.GET, T0 + 300 + 30 * i, external_task_id=f"t{i}"
            )
        )
    return ledger


async def test_status_the_live_view_and_the_dashboard_show_one_eta(tmp_path: Path) -> None:
    clock = ManualClock(start=T0 + 600)
    ledger = _ledger(tmp_path, clock)
    now = clock.time()
    expected = estimate(progress(ledger, "b", now))
    assert expected.basis is Basis.THROUGHPUT
    assert expected.seconds is not None

    assert gather(ledger, batch="b", now=now).eta_seconds == expected.seconds
    assert snapshot(ledger, "b", now).etas["b"] == expected
    ops = Operations(settings=Settings.load(db=ledger.url), ledger=AsyncLedger(ledger), clock=clock)
    app = create_app(ops)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://localhost"
    ) as http:
        [batch] = (await http.get("/api/batches")).json()
    assert batch["eta_seconds"] == expected.seconds
    await ops.ledger.aclose()
    ledger.close()
