"""The legacy /v1 API, in-process on a manual clock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandboxkit import SandboxFactory, client_for

from klingwatch.clock import ManualClock

T2V = "/v1/videos/text2video"


async def create(api: httpx.AsyncClient, path: str = T2V, **body: Any) -> dict[str, Any]:
    body.setdefault("prompt", "a lighthouse at dusk")
    r = await api.post(path, json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_create_answers_the_envelope_with_a_submitted_task(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    r = await api.post(T2V, json={"prompt": "a cat", "external_task_id": "job-1"})
    body = r.json()
    assert r.status_code == 200
    assert set(body) == {"code", "message", "request_id", "data"}
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    data = body["data"]
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "job-1"}
    assert len(data["task_id"]) == 18
    assert data["task_id"].isdigit()
    assert data["created_at"] == data["updated_at"] == round(clock.time() * 1000)


async def test_a_task_moves_through_its_statuses_as_the_clock_passes(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    task_id = (await create(api))["task_id"]
    seen = []
    for step in (0, 11, 60):  # queued 10 s, runs 60 s (fixed durations of the test config)
        clock.advance(step)
        data = (await api.get(f"{T2V}/{task_id}")).json()["data"]
        seen.append(data["task_status"])
    assert seen == ["submitted", "processing", "succeed"]
    assert data["task_status_msg"] == ""
    assert data["final_unit_deduction"] == "1.5"
    video = data["task_result"]["videos"][0]
    assert video["duration"] == "5.1"
    assert video["url"].startswith("http://sandbox.test/sandbox/media/")
    assert data["updated_at"] == data["created_at"] + 70_000


async def test_a_failed_task_is_http_200_with_the_reason_and_an_empty_result(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    async with client_for(make_app(failure_rate=1.0)) as api:
        task_id = (await create(api))["task_id"]
        clock.advance(3600)
        r = await api.get(f"{T2V}/{task_id}")
    body = r.json()
    assert (r.status_code, body["code"], body["message"]) == (200, 0, "SUCCEED")
    assert body["data"]["task_status"] == "failed"
    assert body["data"]["task_status_msg"]
    assert body["data"]["task_result"] == {}
    assert body["data"]["final_unit_deduction"] == "0"


async def test_external_id_is_found_in_the_path_slot_and_as_a_query(
    api: httpx.AsyncClient,
) -> None:
    task_id = (await create(api, external_task_id="ext-7"))["task_id"]
    by_path = (await api.get(f"{T2V}/ext-7")).json()["data"]
    by_query = (await api.get(T2V, params={"external_task_id": "ext-7"})).json()["data"]
    assert by_path["task_id"] == by_query["task_id"] == task_id


@pytest.mark.parametrize(
    ("variant", "path_ok", "query_ok"), [("path", True, False), ("query", False, True)]
)
async def test_external_id_lookup_variants_are_settings(
    make_app: SandboxFactory, variant: str, path_ok: bool, query_ok: bool
) -> None:
    async with client_for(make_app(external_id_lookup=variant)) as api:
        await create(api, external_task_id="ext-v")
        by_path = await api.get(f"{T2V}/ext-v")
        by_query = (await api.get(T2V, params={"external_task_id": "ext-v"})).json()["data"]
    assert (by_path.status_code == 200) is path_ok
    # Without the query variant the parameter is ignored and a list page comes back.
    assert isinstance(by_query, dict) is query_ok


async def test_unknown_id_answers_400_1201_by_default(api: httpx.AsyncClient) -> None:
    r = await api.get(f"{T2V}/866889456698785798")
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 1201
    assert body["message"] == "Task not found by id/external id"
    assert "data" not in body


async def test_unknown_id_can_answer_404_1203(make_app: SandboxFactory) -> None:
    async with client_for(make_app(not_found="1203")) as api:
        r = await api.get(f"{T2V}/nope")
    assert (r.status_code, r.json()["code"]) == (404, 1203)


async def test_a_task_is_only_found_under_its_own_product(api: httpx.AsyncClient) -> None:
    task_id = (await create(api))["task_id"]
    r = await api.get(f"/v1/videos/image2video/{task_id}")
    assert r.json()["code"] == 1201


async def test_duplicate_external_id_answers_1201_and_creates_nothing(
    api: httpx.AsyncClient,
) -> None:
    await create(api, external_task_id="once")
    r = await api.post(T2V, json={"prompt": "again", "external_task_id": "once"})
    assert (r.status_code, r.json()["code"]) == (400, 1201)
    assert "already exists" in r.json()["message"]
    truth = (await api.get("/sandbox/external/once")).json()
    assert truth["creates_seen"] == 2
    assert (await api.get("/sandbox/stats")).json()["tasks"]["total"] == 1


async def test_validation_errors_say_what_to_fix(api: httpx.AsyncClient) -> None:
    r = await api.post(T2V, json={"prompt": "x", "duration": 7})
    assert (r.status_code, r.json()["code"]) == (400, 1201)
    assert "duration" in r.json()["message"]
    r = await api.post(T2V, content=b"{not json")
    assert (r.status_code, r.json()["code"]) == (400, 1200)
    r = await api.post(T2V, json=["a", "list"])
    assert r.json()["code"] == 1200


async def test_list_pages_are_newest_first_arrays(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = []
    for i in range(5):
        ids.append((await create(api, external_task_id=f"p{i}"))["task_id"])
        clock.advance(1)
    page1 = (await api.get(T2V, params={"pageNum": 1, "pageSize": 2})).json()["data"]
    page3 = (await api.get(T2V, params={"pageNum": 3, "pageSize": 2})).json()["data"]
    page4 = (await api.get(T2V, params={"pageNum": 4, "pageSize": 2})).json()["data"]
    assert [t["task_id"] for t in page1] == [ids[4], ids[3]]
    assert [t["task_id"] for t in page3] == [ids[0]]
    assert page4 == []


async def test_list_order_oldest_is_a_setting(make_app: SandboxFactory) -> None:
    async with client_for(make_app(list_order="oldest")) as api:
        first = (await create(api))["task_id"]
        await create(api)
        page = (await api.get(T2V, params={"pageNum": 1, "pageSize": 1})).json()["data"]
    assert page[0]["task_id"] == first


@pytest.mark.parametrize(
    "params",
    [{"pageNum": 0}, {"pageNum": 1001}, {"pageSize": 0}, {"pageSize": 501}, {"pageNum": "x"}],
)
async def test_list_page_bounds_answer_1201(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    r = await api.get(T2V, params=params)
    assert (r.status_code, r.json()["code"]) == (400, 1201)


async def test_image_tasks_return_n_images(api: httpx.AsyncClient, clock: ManualClock) -> None:
    task_id = (await create(api, "/v1/images/generations", n=3))["task_id"]
    clock.advance(100)
    data = (await api.get(f"/v1/images/generations/{task_id}")).json()["data"]
    images = data["task_result"]["images"]
    assert [img["index"] for img in images] == [0, 1, 2]
    assert all(img["url"].endswith(".png") for img in images)
    assert data["final_unit_deduction"] == "0.75"


async def test_video_extend_needs_a_succeeded_video_and_reports_its_parent(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    extend = "/v1/videos/video-extend"
    r = await api.post(extend, json={"video_id": "no-such-video"})
    assert (r.status_code, r.json()["code"]) == (400, 1201)
    parent_id = (await create(api))["task_id"]
    unfinished = await api.post(extend, json={"video_id": "x"})
    assert unfinished.json()["code"] == 1201
    clock.advance(100)
    video = (await api.get(f"{T2V}/{parent_id}")).json()["data"]["task_result"]["videos"][0]
    child = await create(api, extend, video_id=video["id"], prompt="go on")
    assert child["task_info"]["parent_video"] == video
    clock.advance(100)
    got = (await api.get(f"{extend}/{child['task_id']}")).json()["data"]
    assert got["task_info"]["parent_video"]["id"] == video["id"]


async def test_video_extend_refuses_a_video_older_than_30_days(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    parent_id = (await create(api))["task_id"]
    clock.advance(100)
    video = (await api.get(f"{T2V}/{parent_id}")).json()["data"]["task_result"]["videos"][0]
    clock.advance(31 * 86_400)
    r = await api.post("/v1/videos/video-extend", json={"video_id": video["id"]})
    assert (r.status_code, r.json()["code"]) == (400, 1201)
    assert "30 days" in r.json()["message"]


async def test_unknown_route_answers_404_1202(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/videos/no-such-product")
    assert (r.status_code, r.json()["code"]) == (404, 1202)


async def test_account_costs_reports_units_and_is_rate_limited(
    make_app: SandboxFactory, clock: ManualClock
) -> None:
    async with client_for(make_app(unit_budget=10)) as api:
        await create(api)
        first = await api.get("/account/costs")
        second = await api.get("/account/costs")
        clock.advance(1)
        third = await api.get("/account/costs")
    packs = first.json()["data"]["resource_pack_subscribe_infos"]
    video = next(p for p in packs if p["resource_pack_id"] == "sandbox-video")
    assert video["remaining_quantity"] == 8.5
    assert (second.status_code, second.json()["code"]) == (429, 1302)
    assert third.status_code == 200


async def test_the_refuse_marker_answers_a_content_policy_refusal(api: httpx.AsyncClient) -> None:
    r = await api.post(T2V, json={"prompt": "a storm [sandbox:refuse]", "external_task_id": "x"})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 1301
    assert "data" not in body
    assert (await api.get(f"{T2V}/x")).status_code == 400  # nothing was created


async def test_the_fail_marker_makes_a_task_that_fails_with_a_reason(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    task_id = (await create(api, prompt="a storm [sandbox:fail]"))["task_id"]
    clock.advance(3600)
    data = (await api.get(f"{T2V}/{task_id}")).json()["data"]
    assert data["task_status"] == "failed"
    assert "risky content" in data["task_status_msg"]
    assert data["task_result"] == {}


async def test_markers_can_be_turned_off(make_app: SandboxFactory, clock: ManualClock) -> None:
    app = make_app(refuse_marker=None, fail_marker=None)
    async with client_for(app) as api:
        task_id = (await create(api, prompt="[sandbox:refuse] [sandbox:fail]"))["task_id"]
        clock.advance(3600)
        data = (await api.get(f"{T2V}/{task_id}")).json()["data"]
    assert data["task_status"] == "succeed"


_DOG = "https://cdn.example.com/dog.png"
#: The endpoints the vendor pages document beside the original eight, with a body each page
#: shows and what the finished task's ``task_result`` holds on that page.
_DOCUMENTED = [
    (
        "/v1/images/editing/expand",
        {
            "image": _DOG,
            "n": 2,
            **dict.fromkeys(
                (
                    "up_expansion_ratio",
                    "down_expansion_ratio",
                    "left_expansion_ratio",
                    "right_expansion_ratio",
                ),
                0.2,
            ),
        },
        {"images"},
    ),
    ("/v1/audio/text-to-audio", {"prompt": "rain on a roof", "duration": 3.5}, {"audios"}),
    ("/v1/audio/video-to-audio", {"video_url": "https://cdn/v.mov"}, {"videos", "audios"}),
    ("/v1/audio/tts", {"text": "hello", "voice_id": "oversea_male1"}, {"audios"}),
    ("/v1/videos/avatar/image2video", {"image": _DOG, "audio_id": "a1"}, {"videos"}),
    (
        "/v1/videos/advanced-lip-sync",
        {
            "session_id": "s",
            "face_choose": [
                {
                    "face_id": "0",
                    "audio_id": "a",
                    "sound_start_time": 0,
                    "sound_end_time": 3000,
                    "sound_insert_time": 0,
                }
            ],
        },
        {"videos"},
    ),
    (
        "/v1/videos/multi-elements",
        {
            "session_id": "s",
            "edit_mode": "removal",
            "prompt": "Delete the chick from <<<video_1>>>",
        },
        {"videos"},
    ),
    ("/v1/images/omni-image", {"prompt": "a cover", "n": 2}, {"images"}),
    ("/v1/images/multi-image2image", {"subject_image_list": [{"subject_image": _DOG}]}, {"images"}),
    ("/v1/general/ai-multi-shot", {"element_frontal_image": _DOG}, {"images"}),
    (
        "/v1/general/custom-voices",
        {"voice_name": "mine", "voice_url": "https://cdn/a.mp3"},
        {"voices"},
    ),
    (
        "/v1/general/advanced-custom-elements",
        {
            "element_name": "Grace",
            "element_description": "d",
            "reference_type": "video_refer",
            "element_video_list": {"refer_videos": [{"video_url": "https://cdn/v.mp4"}]},
        },
        {"elements"},
    ),
]


@pytest.mark.parametrize(("path", "body", "result"), _DOCUMENTED)
async def test_every_documented_task_endpoint_is_served_and_finishes(
    api: httpx.AsyncClient, clock: ManualClock, path: str, body: dict[str, Any], result: set[str]
) -> None:
    r = await api.post(path, json={**body, "external_task_id": "", "callback_url": ""})
    assert r.status_code == 200, r.text
    task_id = r.json()["data"]["task_id"]
    clock.advance(7200)

    got = (await api.get(f"{path}/{task_id}")).json()["data"]
    page = (await api.get(path, params={"pageNum": 1})).json()["data"]

    assert got["task_status"] == "succeed"
    assert set(got["task_result"]) == result
    assert [t["task_id"] for t in page] == [task_id]
    for kind in ("videos", "images", "audios"):
        for item in got["task_result"].get(kind, []):
            url = item.get("url") or item.get("url_mp3") or item.get("url_1")
            media = await api.get(url)
            assert media.status_code == 200, url
            assert media.headers["content-type"].split("/")[0] in ("video", "image", "audio")
            assert len(media.content) > 100


async def test_audio_results_are_real_mp3_and_wav(
    api: httpx.AsyncClient, clock: ManualClock
) -> None:
    r = await api.post("/v1/audio/text-to-audio", json={"prompt": "rain", "duration": 3})
    task_id = r.json()["data"]["task_id"]
    clock.advance(600)
    audio = (await api.get(f"/v1/audio/text-to-audio/{task_id}")).json()["data"]["task_result"][
        "audios"
    ][0]

    mp3 = await api.get(audio["url_mp3"])
    wav = await api.get(audio["url_wav"])

    assert audio["duration_mp3"] == "3.0"
    assert (mp3.headers["content-type"], mp3.content[:3]) == ("audio/mpeg", b"ID3")
    assert mp3.content[10:12] == b"\xff\xfb"  # an MPEG-1 Layer III frame follows the tag
    assert (wav.headers["content-type"], wav.content[:4], wav.content[8:12]) == (
        "audio/wav",
        b"RIFF",
        b"WAVE",
    )
