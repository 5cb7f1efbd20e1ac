"""Kling's own examples and the official clients' defaults, sent to klingwatch's client and sandbox.

Every valid one is accepted by ``KlingClient.create`` (through the sandbox, in process) and by
the sandbox directly; every one a page says Kling refuses is refused before any request leaves
(the client's request count and the sandbox's ground truth both stay at zero) and refused by the
sandbox with Kling's 400/1201. Every response example parses into a ``Task``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from vendor_examples import REFUSED, RESPONSES, VALID, Example, Refused, Response

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.envelope import parse_task
from klingwatch.kling.errors import RequestValidationError
from klingwatch.kling.models import Task, TaskStatus
from klingwatch.kling.products import get_product
from klingwatch.sandbox import SandboxConfig, create_app

API_KEY = "vendor-examples-key"


def _id(item: Example | Refused | Response) -> str:
    return item.source


class World:
    """One sandbox on a manual clock, a KlingClient on it, and a raw HTTP client."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.app = create_app(
            SandboxConfig(api_keys=(API_KEY,), failure_rate=0, straggler_rate=0), clock=self.clock
        )
        transport = httpx.ASGITransport(app=self.app)
        self.kling = KlingClient(
            api_key=API_KEY, base_url="http://sandbox.test", transport=transport, clock=self.clock
        )
        self.http = httpx.AsyncClient(
            transport=transport,
            base_url="http://sandbox.test",
            headers={"Authorization": f"Bearer {API_KEY}"},
        )

    @property
    def state(self) -> Any:
        return self.app.state.sandbox.state

    def served(self) -> int:
        return sum(self.state.requests.values())

    async def aclose(self) -> None:
        await self.kling.aclose()
        await self.http.aclose()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World()
    yield w
    await w.aclose()


@pytest.mark.parametrize("example", VALID, ids=_id)
async def test_every_vendor_example_is_created_by_the_client_and_finishes(
    world: World, example: Example
) -> None:
    product = get_product(example.product)

    created = await world.kling.create(product, example.body, external_task_id="vendor-1")
    world.clock.advance(6 * 3600)
    done = await world.kling.get(product, created.id)

    assert created.status is TaskStatus.SUBMITTED
    assert world.state.find(created.id).product.name == product.name
    assert world.state.creates_seen["vendor-1"] == 1
    assert done.status is TaskStatus.SUCCEED
    files = {"video", "image", "audio", "speech"} & set(product.outputs)
    assert bool(done.result_urls) == bool(files)


@pytest.mark.parametrize("example", VALID, ids=_id)
async def test_every_vendor_example_is_accepted_by_the_sandbox_as_sent(
    world: World, example: Example
) -> None:
    answer = await world.http.post(example.path, json=example.body)

    assert answer.status_code == 200, answer.text
    assert answer.json()["code"] == 0
    task = parse_task(answer.json()["data"], example.path)
    assert task.status is TaskStatus.SUBMITTED
    # An empty external_task_id is no id: the task has none, and a second create is no duplicate.
    again = await world.http.post(example.path, json=example.body)
    assert again.status_code == 200, again.text
    assert len(world.state.tasks) == 2


@pytest.mark.parametrize("example", VALID, ids=_id)
def test_every_vendor_example_validates_to_a_body_that_validates_again(example: Example) -> None:
    product = get_product(example.product)
    body = product.validate(example.body)

    assert product.validate(body) == body
    assert (
        "external_task_id" not in body.get("options", body)
        or body.get("options", body)["external_task_id"]
    )


@pytest.mark.parametrize("case", REFUSED, ids=_id)
async def test_every_request_a_page_refuses_is_refused_before_anything_is_sent(
    world: World, case: Refused
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        await world.kling.create(case.product, case.body, external_task_id="refused-1")

    assert case.says in str(caught.value)
    assert "\n" not in str(caught.value)
    assert world.kling.stats.requests == 0
    assert world.served() == 0
    assert not world.state.tasks


@pytest.mark.parametrize("case", REFUSED, ids=_id)
async def test_the_sandbox_refuses_the_same_requests_the_way_kling_does(
    world: World, case: Refused
) -> None:
    answer = await world.http.post(get_product(case.product).path, json=case.body)

    assert answer.status_code == 400
    assert answer.json()["code"] == 1201
    assert case.says in answer.json()["message"]
    assert not world.state.tasks


@pytest.mark.parametrize("response", RESPONSES, ids=_id)
def test_every_response_example_parses_into_a_task(response: Response) -> None:
    task = Task.from_payload(response.data)
    enveloped = parse_task(response.data, response.source)

    assert task.status.value == response.status
    assert len(task.result_urls) == response.urls
    assert enveloped == task
    assert task.created_at is not None


def test_a_cash_deduction_is_kept_beside_the_units() -> None:
    avatar = next(r for r in RESPONSES if r.source.startswith("kling-avatar.md"))
    task = Task.from_payload(avatar.data)

    assert str(task.units) == "4.96"
    assert [(b.charge_type, str(b.amount)) for b in task.billing] == [
        ("unit", "4.96"),
        ("cash", "0.21"),
    ]


def test_legacy_audio_and_multi_shot_results_become_downloadable_files() -> None:
    audio = next(r for r in RESPONSES if r.source.startswith("kling-text-to-audio.md"))
    shots = next(r for r in RESPONSES if r.source.startswith("kling-image-common-subject"))

    sound = Task.from_payload(audio.data).audios[0]
    assert (sound.url, sound.mp3_url, sound.wav_url, sound.duration) == (
        "https://cdn/a.mp3",
        "https://cdn/a.mp3",
        "https://cdn/a.wav",
        3.0,
    )
    assert Task.from_payload(shots.data).result_urls == [
        "https://cdn/1.png",
        "https://cdn/2.png",
        "https://cdn/3.png",
    ]


def test_a_new_standard_task_keeps_voices_and_elements_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = next(r for r in RESPONSES if "Query Task (By task ID)" in r.source).data

    task = Task.from_payload(data)

    assert [o["type"] for o in task.raw["outputs"]][-2:] == ["voice", "element"]
    assert (len(task.videos), len(task.images), len(task.audios)) == (1, 1, 1)
    assert "unknown type" not in caplog.text


#: Response examples whose every field the task model carries. The others also hold fields
#: klingwatch reads past: a top-level ``watermark_info`` (the request's switch, echoed), a legacy
#: ``series_images`` list (read into ``images``), the create examples' ``"external_id": ""``
#: (written ``null``) and the callback page's test body without ``billing``.
_WRITTEN_BACK = [
    r
    for r in RESPONSES
    if not r.source.startswith(("kling-avatar", "kling-image-o1", "kling-image-common-outpainting"))
    and "Create Task" not in r.source
    and "Test Callback" not in r.source
]


@pytest.mark.parametrize("response", _WRITTEN_BACK, ids=_id)
def test_every_response_example_is_written_back_as_its_page_prints_it(response: Response) -> None:
    assert Task.from_payload(response.data).to_payload() == response.data
