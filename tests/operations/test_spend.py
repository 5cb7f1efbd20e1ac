"""The spend ledger and budget caps as operations: what a run against the sandbox spent, cash
charges read from Kling's own task objects, and the errors a face shows as one line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from ops_world import BASE, operations

from klingwatch.clock import ManualClock
from klingwatch.kling.models import Task
from klingwatch.monitor.observe import observe_task
from klingwatch.operations import SpendRequestError
from klingwatch.store import LocalStatus, NewTask, Source

DAY1 = 1_780_000_000.0  # 2026-05-28 UTC, early in the day


def _lines(n: int, mode: str = "std", prefix: str = "t") -> list[NewTask]:
    return [
        NewTask(
            "text2video",
            {"prompt": f"a kite, take {i}", "mode": mode, "model_name": "kling-v1"},
            f"{prefix}-{mode}-{i}",
            model="kling-v1",
            mode=mode,
        )
        for i in range(n)
    ]


async def test_what_the_engine_spent_matches_what_kling_deducted(tmp_path: Path) -> None:
    async with operations(tmp_path, clock=ManualClock(start=DAY1)) as (ops, _, app):
        await ops.queue("b1", [*_lines(3, "std"), *_lines(2, "pro")])
        await ops.engine(until_done=True, done_batch="b1").run()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as h:
            truth = (await h.get("/sandbox/stats")).json()

        report = await ops.spend(by=("batch", "mode"))
        assert [(r.keys, r.tasks) for r in report.rows] == [
            ({"batch": "b1", "mode": "pro"}, 2),
            ({"batch": "b1", "mode": "std"}, 3),
        ]
        # Units spent are Kling's own deduction, summed exactly.
        assert report.total.units_spent == Decimal(truth["units_spent"])
        assert report.total.charged == 5
        # The estimate was stored when queued: kling-v1 std 1 unit, pro 3.5 units (5 s).
        assert [r.units_estimated for r in report.rows] == [Decimal(7), Decimal(3)]
        assert report.to_dict()["total"]["units_estimated"] == "10"
        by_day = await ops.spend(by=["day"])
        assert [r.keys for r in by_day.rows] == [{"day": "2026-05-28"}]


def _tasks_api(external_id: str, billing: list[dict[str, Any]]) -> Task:
    return Task.from_tasks_api(
        {
            "id": f"kling-{external_id}",
            "status": "succeeded",
            "external_id": external_id,
            "create_time": 1_780_000_000_000,
            "update_time": 1_780_000_090_000,
            "outputs": [{"type": "video", "id": "v", "url": "https://x.example/v.mp4"}],
            "billing": billing,
        }
    )


async def test_cash_charged_in_billing_is_kept_per_currency(tmp_path: Path) -> None:
    async with operations(tmp_path, clock=ManualClock(start=DAY1)) as (ops, ledger, _):
        await ops.queue("b1", _lines(3))
        charges = [
            [{"charge_type": "cash", "amount": "0.35", "currency": "USD", "cash_type": "balance"}],
            [{"charge_type": "cash", "amount": "0.40", "currency": "USD"}],
            [{"charge_type": "unit", "amount": "1", "package_type": "video"}],
        ]
        for task, billing in zip(ledger.tasks(), charges, strict=True):
            observed = _tasks_api(task.external_task_id, billing)
            ledger.apply(observe_task(observed, source=Source.GET, at=DAY1 + 100))
        report = await ops.spend()
        [row] = report.rows
        assert row.cash == (("USD", Decimal("0.75")),)
        assert row.units_spent == Decimal(1)
        assert row.to_dict()["cash"] == [{"currency": "USD", "amount": "0.75"}]
        one = ledger.task("t-std-0")
        assert one is not None
        assert (one.cash_amount, one.cash_currency, one.units) == ("0.35", "USD", None)


async def test_spend_since_and_of_one_batch(tmp_path: Path) -> None:
    clock = ManualClock(start=DAY1)
    async with operations(tmp_path, clock=clock) as (ops, _, _):
        await ops.queue("early", _lines(2, prefix="e"))
        clock.advance(86_400 * 2)
        await ops.queue("late", _lines(1, prefix="l"))
        since_ms = int((DAY1 + 86_400) * 1000)
        recent = await ops.spend(by=("batch",), since_ms=since_ms)
        assert [r.keys["batch"] for r in recent.rows] == ["late"]
        early = await ops.spend(by=("product", "model"), batch="early")
        assert [(r.keys, r.tasks) for r in early.rows] == [
            ({"product": "text2video", "model": "kling-v1"}, 2)
        ]


async def test_caps_through_the_operations(tmp_path: Path) -> None:
    async with operations(tmp_path, clock=ManualClock(start=DAY1)) as (ops, ledger, _):
        await ops.queue("b1", _lines(4), max_units=2)
        budget = await ops.budget("b1")
        assert (budget.max_units, budget.units_estimated, budget.sent_estimate) == (
            Decimal(2),
            Decimal(4),
            Decimal(0),
        )
        await ops.send_once()
        held = await ops.budget("b1")
        assert (held.sent_estimate, held.held) == (Decimal(2), 2)
        assert held.hold_reason == "held: budget cap 2 units, 2 sent"
        raised = await ops.set_cap("b1", "3")
        assert (raised.max_units, raised.held, raised.freed) == (Decimal(3), 1, 1)
        assert raised.to_dict()["hold_reason"] == "held: budget cap 3 units, 2 sent"
        await ops.send_once()
        assert ledger.counts(batch="b1")[LocalStatus.SUBMITTED] == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ops: ops.spend(by=["batch", "colour"]), "cannot group spend by colour"),
        (lambda ops: ops.set_cap("nope", 10), "no batch 'nope'"),
        (lambda ops: ops.budget("nope"), "no batch 'nope'"),
        (lambda ops: ops.set_cap("b1", -1), "must be a positive number"),
        (lambda ops: ops.set_cap("b1", "lots"), "not 'lots'"),
    ],
)
async def test_a_wrong_request_is_one_clear_error(tmp_path: Path, call: Any, message: str) -> None:
    async with operations(tmp_path, clock=ManualClock(start=DAY1)) as (ops, _, _):
        await ops.queue("b1", _lines(1))
        with pytest.raises(SpendRequestError, match=message):
            await call(ops)
