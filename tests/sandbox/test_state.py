"""The account: concurrency slots (1303), the unit budget (1102), seeded lifecycles."""

from __future__ import annotations

from decimal import Decimal

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sandboxkit import SandboxFactory, client_for

from klingwatch.clock import ManualClock, ScaledClock
from klingwatch.kling.models import TaskStatus
from klingwatch.kling.products import Family, get_product
from klingwatch.sandbox import SandboxConfig, create_app
from klingwatch.sandbox.state import SandboxError, SandboxState

T2V = "/v1/videos/text2video"
IMG = "/v1/images/generations"


async def test_over_the_slot_limit_answers_1303_and_creates_nothing(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    async with client_for(make_app(slots={"video": 2})) as api:
        for _ in range(2):
            assert (await api.post(T2V, json={"prompt": "x"})).status_code == 200
        refused = await api.post(T2V, json={"prompt": "x", "external_task_id": "third"})
        assert (refused.status_code, refused.json()["code"]) == (429, 1303)
        assert "data" not in refused.json()
        assert (await api.get(f"{T2V}/third")).json()["code"] == 1201
        clock.advance(70)  # both finish: their slots free up
        again = await api.post(T2V, json={"prompt": "x", "external_task_id": "third"})
        assert again.status_code == 200


async def test_an_image_task_takes_n_slots(make_app: SandboxFactory) -> None:
    async with client_for(make_app(slots={"image": 4})) as api:
        assert (await api.post(IMG, json={"prompt": "x", "n": 3})).status_code == 200
        refused = await api.post(IMG, json={"prompt": "x", "n": 2})
        assert refused.json()["code"] == 1303
        assert (await api.post(IMG, json={"prompt": "x", "n": 1})).status_code == 200
        # Families have their own slots.
        assert (await api.post(T2V, json={"prompt": "x"})).status_code == 200


async def test_failed_tasks_also_hold_their_slot_until_they_end(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    async with client_for(make_app(slots={"video": 1}, failure_rate=1.0)) as api:
        await api.post(T2V, json={"prompt": "x"})
        assert (await api.post(T2V, json={"prompt": "x"})).json()["code"] == 1303
        clock.advance(3600)
        assert (await api.post(T2V, json={"prompt": "x"})).status_code == 200


async def test_the_unit_budget_answers_1102_when_spent(make_app: SandboxFactory) -> None:
    async with client_for(make_app(unit_budget=3, slots={"video": 10})) as api:
        for _ in range(2):  # 1.5 units each
            assert (await api.post(T2V, json={"prompt": "x"})).status_code == 200
        r = await api.post(T2V, json={"prompt": "x"})
    assert (r.status_code, r.json()["code"]) == (429, 1102)
    assert r.json()["message"] == "Account balance not enough"


async def test_failed_tasks_give_their_units_back(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    async with client_for(make_app(unit_budget="1.5", failure_rate=1.0)) as api:
        await api.post(T2V, json={"prompt": "x"})
        assert (await api.post(T2V, json={"prompt": "x"})).json()["code"] == 1102
        clock.advance(3600)
        assert (await api.post(T2V, json={"prompt": "x"})).status_code == 200


async def timeline(seed: int) -> list[tuple[str, int, int, str]]:
    clock = ManualClock()
    config = SandboxConfig(seed=seed, failure_rate=0.3, slots={"video": 100})
    app = create_app(config, clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sb"
    ) as api:
        for _ in range(20):
            await api.post(T2V, json={"prompt": "x", "mode": "pro"})
        tasks = (await api.get("/sandbox/tasks")).json()["tasks"]
    return [
        (t["task_id"], t["planned_started_at"], t["planned_finished_at"], t["outcome"])
        for t in tasks
    ]


async def test_the_same_seed_replays_the_same_run() -> None:
    first, again, other = await timeline(7), await timeline(7), await timeline(8)
    assert first == again
    assert first != other
    outcomes = {t[3] for t in first}
    assert outcomes == {"succeed", "failed"}


async def test_durations_follow_the_registry_and_scale_with_the_clock() -> None:
    config = SandboxConfig(failure_rate=0.0, straggler_rate=0.0, slots={"video": 500})
    app = create_app(config, clock=ScaledClock(0.01))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sb"
    ) as api:
        for _ in range(200):
            await api.post(T2V, json={"prompt": "x"})
        tasks = (await api.get("/sandbox/tasks")).json()["tasks"]
    totals = sorted(t["planned_finished_at"] - t["created_at"] for t in tasks)
    median_ms = totals[len(totals) // 2]
    # Registry: std video queues ~10 s and runs ~75 s at p50; scaled by 0.01 -> ~850 ms.
    assert 500 < median_ms < 1300


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(
                st.just("create"),
                st.sampled_from(["text2video", "image-generation"]),
                st.integers(1, 4),
            ),
            st.tuples(st.just("advance"), st.just(""), st.integers(0, 120)),
        ),
        max_size=60,
    )
)
def test_slots_budget_and_statuses_stay_consistent(ops: list[tuple[str, str, int]]) -> None:
    clock = ManualClock(auto_advance=False)
    config = SandboxConfig(
        slots={"video": 3, "image": 5}, unit_budget=Decimal(20), failure_rate=0.3, seed=5
    )
    state = SandboxState(config, clock)
    last_seen: dict[str, int] = {}
    rank = {
        TaskStatus.SUBMITTED: 0,
        TaskStatus.PROCESSING: 1,
        TaskStatus.SUCCEED: 2,
        TaskStatus.FAILED: 2,
    }
    for op, product_name, n in ops:
        if op == "advance":
            clock.advance(n)
        else:
            product = get_product(product_name)
            request = {"prompt": "x", "n": n} if product.family is Family.IMAGE else {"prompt": "x"}
            before = dict(state.in_use)
            refused: int | None = None
            try:
                state.create(product, request, external_id=None, callback_url=None, base_url="")
            except SandboxError as exc:
                refused = exc.code
            over = (
                before[product.family] + product.slot_cost(request) > config.slots[product.family]
            )
            assert refused in ((1303, 1102) if over else (None, 1102))
        now = state.advance()
        for family in Family:
            live = sum(t.slot_cost for t in state.order if t.family is family and now < t.finished)
            assert state.in_use[family] == live <= config.slots[family]
        charged = sum(
            (
                t.units
                for t in state.order
                if not (t.outcome is TaskStatus.FAILED and now >= t.finished)
            ),
            Decimal(0),
        )
        assert state.units_spent == charged <= Decimal(20)
        for t in state.order:
            r = rank[t.status_at(now)]
            assert r >= last_seen.get(t.task_id, 0)
            last_seen[t.task_id] = r
