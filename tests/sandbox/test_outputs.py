"""What a sandbox task reports: the results its product's page shows, in both standards."""

from __future__ import annotations

from typing import Any

import httpx
from sandboxkit import SandboxFactory, client_for

from klingwatch.clock import ManualClock
from klingwatch.sandbox import Answer
from klingwatch.sandbox.runtime import Sandbox

_DOG = "https://cdn.example.com/dog.png"


async def finished(api: httpx.AsyncClient, clock: ManualClock, path: str, **body: Any) -> str:
    r = await api.post(path, json=body)
    assert r.status_code == 200, r.text
    clock.advance(7200)
    return str(r.json()["data"].get("task_id") or r.json()["data"]["id"])


async def both_views(api: httpx.AsyncClient, path: str, task_id: str) -> tuple[Any, Any]:
    legacy = (await api.get(f"{path}/{task_id}")).json()["data"]
    (tasks,) = (await api.get("/tasks", params={"task_ids": task_id})).json()["data"]
    return legacy, tasks


async def test_an_ai_multi_shot_is_one_item_in_legacy_and_three_images_in_tasks(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    path = "/v1/general/ai-multi-shot"
    task_id = await finished(api, clock, path, element_frontal_image=_DOG)
    legacy, tasks = await both_views(api, path, task_id)

    (item,) = legacy["task_result"]["images"]
    assert set(item) == {"index", "url_1", "url_2", "url_3"}  # as the page shows it
    urls = [o["url"] for o in tasks["outputs"]]
    assert urls == [item["url_1"], item["url_2"], item["url_3"]]


async def test_audio_is_spelled_by_standard(api: httpx.AsyncClient, clock: ManualClock) -> None:
    path = "/v1/audio/text-to-audio"
    task_id = await finished(api, clock, path, prompt="rain", duration=3)
    legacy, tasks = await both_views(api, path, task_id)

    (audio,) = legacy["task_result"]["audios"]
    assert set(audio) == {"id", "url_mp3", "url_wav", "duration_mp3", "duration_wav"}
    (output,) = tasks["outputs"]
    assert output == {
        "type": "audio",
        "id": audio["id"],
        "mp3_url": audio["url_mp3"],
        "wav_url": audio["url_wav"],
        "mp3_duration": "3.0",
        "wav_duration": "3.0",
    }


async def test_a_voice_and_an_element_carry_the_fields_of_their_pages(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    voice_id = await finished(
        api, clock, "/v1/general/custom-voices", voice_name="mine", voice_url="https://cdn/a.mp3"
    )
    element_id = await finished(
        api,
        clock,
        "/v1/general/advanced-custom-elements",
        element_name="Grace",
        element_description="d",
        reference_type="video_refer",
        element_video_list={"refer_videos": [{"video_url": "https://cdn/v.mp4"}]},
    )
    voice = (await api.get(f"/v1/general/custom-voices/{voice_id}")).json()["data"]
    element = (await api.get(f"/v1/general/advanced-custom-elements/{element_id}")).json()["data"]

    (made,) = voice["task_result"]["voices"]
    assert set(made) == {"voice_id", "voice_name", "trial_url", "owned_by"}
    assert made["voice_name"] == "mine"
    (item,) = element["task_result"]["elements"]
    assert isinstance(item["element_id"], int)  # a number on the page
    assert (item["element_name"], item["status"]) == ("Grace", "succeed")


async def test_a_watermarked_copy_comes_only_when_the_request_asks(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    async with client_for(make_app()) as api:
        plain = await finished(api, clock, "/v1/videos/text2video", prompt="x")
        marked = await finished(
            api, clock, "/v1/videos/text2video", prompt="x", watermark_info={"enabled": True}
        )
        new = await finished(
            api,
            clock,
            "/text-to-video/kling-3.0-turbo",
            prompt="x",
            settings={"duration": 5},
            options={"watermark_info": {"enabled": True}},
        )
        plain_video, _ = await both_views(api, "/v1/videos/text2video", plain)
        marked_video, _ = await both_views(api, "/v1/videos/text2video", marked)
        (new_task,) = (await api.get("/tasks", params={"task_ids": new})).json()["data"]

    assert "watermark_url" not in plain_video["task_result"]["videos"][0]
    assert marked_video["task_result"]["videos"][0]["watermark_url"]
    assert new_task["outputs"][0]["watermark_url"] == new_task["outputs"][0]["url"]


async def test_a_create_answers_submitted_even_when_its_task_is_already_done(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.script.on_create("now", Answer.served(queue=0, run=0))
    r = await api.post("/v1/videos/text2video", json={"prompt": "x", "external_task_id": "now"})
    got = (await api.get("/v1/videos/text2video/now")).json()["data"]

    assert r.json()["data"]["task_status"] == "submitted"
    assert got["task_status"] == "succeed"
