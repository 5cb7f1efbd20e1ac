"""Chaos knobs: injected codes, ambiguous creates, cut answers, latency; the spec parser."""

from __future__ import annotations

import json

import httpx
import pytest
from sandboxkit import SandboxFactory, client_for, make_config

from klingwatch.clock import ManualClock
from klingwatch.sandbox import CHAOS_PROFILES, ChaosConfig, create_app, parse_chaos

T2V = "/v1/videos/text2video"


def test_a_spec_parses_into_rates_and_latency() -> None:
    chaos = parse_chaos("5000:0.05, 1302:0.02,drop:0.01,truncate:0.01,created:0.1,latency:50+100")
    assert chaos.errors == {5000: 0.05, 1302: 0.02}
    assert (chaos.drop, chaos.truncate, chaos.created_then_5000) == (0.01, 0.01, 0.1)
    assert (chaos.latency_ms, chaos.jitter_ms) == (50, 100)
    assert chaos.enabled


def test_profiles_parse_and_none_is_off() -> None:
    for name in CHAOS_PROFILES:
        parse_chaos(name)
    assert not parse_chaos("none").enabled
    assert not parse_chaos(None).enabled
    assert parse_chaos("flaky").errors[1302] > 0


@pytest.mark.parametrize(
    ("spec", "words"),
    [("5000", "kind:value"), ("9999:0.1", "not a Kling error code"), ("fire:0.1", "unknown")],
)
def test_a_bad_spec_says_what_is_wrong(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_chaos(spec)


async def test_an_injected_code_is_answered_instead_of_serving(
    make_app: SandboxFactory,
) -> None:
    app = make_app(chaos=ChaosConfig(errors={1302: 1.0}))
    async with client_for(app) as api:
        r = await api.post(T2V, json={"prompt": "x"})
        truth = (await api.get("/sandbox/stats")).json()
    assert (r.status_code, r.json()["code"]) == (429, 1302)
    assert r.headers["retry-after"] == "1"
    assert "data" not in r.json()
    assert truth["tasks"]["total"] == 0
    assert truth["chaos"] == {"error:1302": 1}
    # The ground truth counts the answer the client got.
    assert truth["requests"]["by_route"] == {f"POST {T2V}": {"429 1302": 1}}


async def test_created_then_5000_leaves_a_task_to_find(make_app: SandboxFactory) -> None:
    app = make_app(chaos=ChaosConfig(created_then_5000=1.0))
    async with client_for(app) as api:
        r = await api.post(T2V, json={"prompt": "x", "external_task_id": "ghost"})
        assert (r.status_code, r.json()["code"]) == (500, 5000)
        # Reads are not creates: the lookup by external id works and finds the task.
        found = await api.get(f"{T2V}/ghost")
        stats = (await api.get("/sandbox/stats")).json()
    assert found.status_code == 200
    assert stats["requests"]["by_route"][f"POST {T2V}"] == {"500 5000": 1}
    assert stats["creates"]["created"] == 1
    assert found.json()["data"]["task_info"]["external_task_id"] == "ghost"


async def test_created_then_5000_passes_real_refusals_through(make_app: SandboxFactory) -> None:
    app = make_app(chaos=ChaosConfig(created_then_5000=1.0))
    async with client_for(app) as api:
        r = await api.post(T2V, json={"prompt": ""})
        stats = (await api.get("/sandbox/stats")).json()
    assert (r.status_code, r.json()["code"]) == (400, 1201)
    assert stats["chaos"] == {}


async def test_truncated_answers_are_cut_json(make_app: SandboxFactory) -> None:
    app = make_app(chaos=ChaosConfig(truncate=1.0))
    async with client_for(app) as api:
        r = await api.post(T2V, json={"prompt": "x", "external_task_id": "cut"})
        truth = (await api.get("/sandbox/external/cut")).json()
        stats = (await api.get("/sandbox/stats")).json()
    assert r.status_code == 200
    assert stats["requests"]["by_code"] == {"truncated": 1}
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert truth["task_id"] is not None  # it was served, only the answer was cut


async def test_ground_truth_and_media_never_see_chaos(make_app: SandboxFactory) -> None:
    app = make_app(chaos=ChaosConfig(errors={5000: 1.0}))
    async with client_for(app) as api:
        assert (await api.get("/sandbox/stats")).status_code == 200


async def test_latency_waits_on_the_sandbox_clock() -> None:
    clock = ManualClock()  # auto-advance: a sleep moves the clock
    chaos = ChaosConfig(latency_ms=250)
    app = create_app(make_config(chaos=chaos), clock=clock)
    before = clock.time()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sb"
    ) as api:
        r = await api.get(T2V, headers={"Authorization": "Bearer api-key-test"})
    assert r.status_code == 200
    assert clock.time() - before == pytest.approx(0.25)


async def test_chaos_is_off_by_default(api: httpx.AsyncClient) -> None:
    for _ in range(50):
        assert (await api.get(T2V)).status_code == 200
    assert not make_config().chaos.enabled


def test_nominal_latency_parses_apart_from_real_latency() -> None:
    assert parse_chaos("nominal:200+50").model_dump(include={"latency_ms", "jitter_ms"}) == {
        "latency_ms": 200,
        "jitter_ms": 50,
    }
    assert parse_chaos("nominal:200").latency_nominal
    assert not parse_chaos("latency:200").latency_nominal


class _ScaledManualClock(ManualClock):
    """A manual clock on a compressed axis that notes what it is asked to sleep."""

    scale = 0.05

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super().sleep(seconds)


@pytest.mark.parametrize(("nominal", "slept"), [(False, 4.0), (True, 0.2)])
async def test_nominal_latency_shrinks_with_the_time_scale(nominal: bool, slept: float) -> None:
    clock = _ScaledManualClock()
    chaos = ChaosConfig(latency_ms=200, latency_nominal=nominal)
    app = create_app(make_config(chaos=chaos), clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sb"
    ) as api:
        r = await api.get(T2V, headers={"Authorization": "Bearer api-key-test"})
    assert r.status_code == 200
    # 200 real ms at scale 0.05 is 4 nominal seconds of sleep; 200 nominal ms is 0.2.
    assert clock.slept[:1] == [pytest.approx(slept)]
