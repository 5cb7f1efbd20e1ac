"""The normalized task model: both API standards, every result kind, garbage tolerated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from klingwatch.kling.errors import BadCallback, BadResponse, UnknownTaskStatus
from klingwatch.kling.models import ApiStandard, Task, TaskStatus

# KLING_PROTOCOL.md section 4, the task object, verbatim.
PROTOCOL_TASK_OBJECT = """
{"task_id": "866889456698785798", "task_status": "succeed", "task_status_msg": "",
 "task_info": {"external_task_id": "my-id"},
 "task_result": {"videos": [{"id": "…", "url": "https://…mp4", "duration": "5.1"}]},
 "final_unit_deduction": "1.5",
 "created_at": 1722769557708, "updated_at": 1722769557708}
"""
# KLING_PROTOCOL.md section 8, the signed test-vector body (a new-standard callback).
PROTOCOL_CALLBACK_BODY = (
    b'{"id":"1234567890","status":"succeeded","message":"","create_time":1781080778802,'
    b'"update_time":1781080794151}'
)

T0 = datetime(2024, 8, 4, 11, 5, 57, 708000, tzinfo=UTC)


def test_the_protocols_task_object_parses_verbatim() -> None:
    task = Task.from_payload(json.loads(PROTOCOL_TASK_OBJECT))

    assert task.id == "866889456698785798"
    assert task.status is TaskStatus.SUCCEED
    assert task.external_id == "my-id"
    assert task.status_msg == ""
    assert task.videos[0].url == "https://…mp4"
    assert task.videos[0].id == "…"
    assert task.videos[0].duration == 5.1
    assert task.units == Decimal("1.5")
    assert task.created_at == T0
    assert task.updated_at == T0
    assert task.created_at.tzinfo is UTC
    assert task.standard is ApiStandard.LEGACY
    assert task.result_urls == ["https://…mp4"]
    assert task.expires_at == T0 + timedelta(days=30)


def test_a_legacy_create_answer_is_a_submitted_task() -> None:
    task = Task.from_payload(
        {
            "task_id": "866889456698785798",
            "task_status": "submitted",
            "task_info": {"external_task_id": "batch-1-0001"},
            "created_at": 1722769557708,
            "updated_at": 1722769557708,
        }
    )

    assert (task.id, task.status, task.external_id) == (
        "866889456698785798",
        TaskStatus.SUBMITTED,
        "batch-1-0001",
    )
    assert not task.is_terminal
    assert task.expires_at is None
    assert (task.videos, task.units, task.billing) == ((), None, ())


def test_a_new_standard_create_answer_is_a_submitted_task() -> None:
    task = Task.from_payload(
        {
            "id": "900000000000000001",
            "status": "submitted",
            "create_time": 1781080778802,
            "update_time": 1781080778802,
            "external_id": "batch-1-0002",
        }
    )

    assert (task.id, task.status, task.external_id) == (
        "900000000000000001",
        TaskStatus.SUBMITTED,
        "batch-1-0002",
    )
    assert task.standard is ApiStandard.TASKS
    assert task.created_at == datetime(2026, 6, 10, 8, 39, 38, 802000, tzinfo=UTC)


def test_a_failed_task_keeps_its_reason_and_has_no_results() -> None:
    task = Task.from_payload(
        {
            "task_id": "1",
            "task_status": "failed",
            "task_status_msg": "Image pixel is invalid",
            "task_info": {},
            "task_result": {},
            "created_at": 1722769557708,
            "updated_at": 1722769600000,
        }
    )

    assert task.status is TaskStatus.FAILED
    assert task.is_terminal
    assert task.failure_reason == "Image pixel is invalid"
    assert task.result_urls == []


def test_failure_reason_is_none_unless_failed() -> None:
    assert Task(id="1", status=TaskStatus.SUCCEED, status_msg="note").failure_reason is None


def test_a_video_extend_carries_its_parent_video() -> None:
    task = Task.from_payload(
        {
            "task_id": "2",
            "task_status": "processing",
            "task_info": {
                "external_task_id": "ext",
                "parent_video": {"id": "p1", "url": "https://x/p.mp4", "duration": "5.0"},
            },
        }
    )

    assert task.parent_video is not None
    assert (task.parent_video.id, task.parent_video.url, task.parent_video.duration) == (
        "p1",
        "https://x/p.mp4",
        5.0,
    )


def test_legacy_images_and_audios_are_read() -> None:
    task = Task.from_payload(
        {
            "task_id": "3",
            "task_status": "succeed",
            "task_result": {
                "images": [{"index": 0, "url": "https://x/0.png"}, {"index": "1", "url": "b"}],
                "audios": [{"id": "a", "url_mp3": "kept", "mp3_url": "https://x/a.mp3"}],
            },
        }
    )

    assert [(i.index, i.url) for i in task.images] == [(0, "https://x/0.png"), (1, "b")]
    assert task.audios[0].url == "https://x/a.mp3"
    assert task.audios[0].model_extra == {"url_mp3": "kept"}
    assert task.result_urls == ["https://x/0.png", "b", "https://x/a.mp3"]


def test_new_standard_outputs_of_every_type_are_read() -> None:
    task = Task.from_payload(
        {
            "id": "4",
            "status": "succeeded",
            "outputs": [
                {
                    "type": "video",
                    "id": "v",
                    "url": "https://x/v.mp4",
                    "watermark_url": "https://x/vw.mp4",
                    "duration": 5.1,
                },
                {"type": "image", "url": "https://x/i.png", "watermark_url": "w", "group_id": 7},
                {
                    "type": "audio",
                    "id": "a",
                    "mp3_url": "https://x/a.mp3",
                    "wav_url": "https://x/a.wav",
                    "duration": "3.2",
                },
                {"type": "hologram", "url": "https://x/h"},
                "not an object",
            ],
        }
    )

    assert task.status is TaskStatus.SUCCEED
    (video,) = task.videos
    assert (video.id, video.url, video.watermark_url, video.duration) == (
        "v",
        "https://x/v.mp4",
        "https://x/vw.mp4",
        5.1,
    )
    (image,) = task.images
    assert (image.url, image.watermark_url, image.model_extra) == (
        "https://x/i.png",
        "w",
        {"group_id": 7},
    )
    (audio,) = task.audios
    assert (audio.url, audio.mp3_url, audio.wav_url, audio.duration) == (
        "https://x/a.mp3",
        "https://x/a.mp3",
        "https://x/a.wav",
        3.2,
    )
    assert task.result_urls == ["https://x/v.mp4", "https://x/i.png", "https://x/a.mp3"]


def test_billing_units_sum_unit_charges_and_keep_cash_apart() -> None:
    task = Task.from_payload(
        {
            "id": "5",
            "status": "succeeded",
            "billing": [
                {"charge_type": "unit", "amount": "1.5", "package_type": "video"},
                {"charge_type": "unit", "amount": "0.25", "package_type": "video"},
                {"charge_type": "cash", "amount": "0.84", "currency": "USD"},
                {"amount": "9", "currency": "USD"},  # unlabelled, but money: not units
            ],
        }
    )

    assert task.units == Decimal("1.75")
    assert [b.charge_type for b in task.billing] == ["unit", "unit", "cash", None]
    assert task.billing[2].amount == Decimal("0.84")
    assert task.billing[2].currency == "USD"


def test_a_task_billed_only_in_cash_has_no_units() -> None:
    task = Task.from_payload(
        {"id": "6", "status": "succeeded", "billing": [{"charge_type": "cash", "amount": "1"}]}
    )

    assert task.units is None
    assert len(task.billing) == 1


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        ("submitted", TaskStatus.SUBMITTED),
        ("processing", TaskStatus.PROCESSING),
        ("succeed", TaskStatus.SUCCEED),
        ("succeeded", TaskStatus.SUCCEED),
        ("SUCCEED", TaskStatus.SUCCEED),
        (" failed ", TaskStatus.FAILED),
    ],
)
def test_both_spellings_of_every_status_are_read(wire: str, status: TaskStatus) -> None:
    assert Task.from_payload({"task_id": "1", "task_status": wire}).status is status
    assert Task.from_payload({"id": "1", "status": wire}).status is status


def test_the_new_standard_spelling_is_written_back() -> None:
    assert TaskStatus.SUCCEED.to_tasks_api() == "succeeded"
    assert TaskStatus.FAILED.to_tasks_api() == "failed"


@pytest.mark.parametrize("status", ["queued", "", 3, None, "succes"])
def test_an_unknown_status_raises_with_the_raw_payload(status: object) -> None:
    payload = {"task_id": "1", "task_status": status}

    with pytest.raises(UnknownTaskStatus) as caught:
        Task.from_payload(payload)

    assert caught.value.payload is payload
    assert caught.value.status == status


def test_garbage_types_are_read_without_crashing() -> None:
    task = Task.from_payload(
        {
            "task_id": 866889456698785798,
            "task_status": "succeed",
            "task_status_msg": None,
            "task_info": "not an object",
            "task_result": {
                "videos": [
                    {"id": 12, "url": 34, "duration": 5},
                    {"url": "u", "duration": "five"},
                    {"url": ["nested"], "duration": None},
                    None,
                ],
                "images": "nope",
            },
            "final_unit_deduction": "lots",
            "created_at": "1722769557708",
            "updated_at": "yesterday",
        }
    )

    assert task.id == "866889456698785798"
    assert task.external_id is None
    assert task.status_msg == ""
    assert [(v.id, v.url, v.duration) for v in task.videos] == [
        ("12", "34", 5.0),
        (None, "u", None),
        (None, None, None),
    ]
    assert task.images == ()
    assert task.units is None
    assert task.created_at == T0
    assert task.updated_at is None


def test_a_minimal_task_has_nothing_else() -> None:
    task = Task.from_payload({"id": "7", "status": "processing", "outputs": None})

    assert (task.videos, task.images, task.audios, task.billing) == ((), (), (), ())
    assert (task.created_at, task.updated_at, task.external_id, task.units) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"task_status": "succeed"},
        {"task_id": "", "task_status": "succeed"},
        {"task_id": None, "task_status": "succeed"},
        {"task_id": {"nested": 1}, "task_status": "succeed"},
        {"id": True, "status": "succeeded"},
        ["not", "an", "object"],
        "866889456698785798",
    ],
)
def test_something_that_is_not_a_task_is_a_bad_response(payload: Any) -> None:
    with pytest.raises(BadResponse, match="task"):
        Task.from_payload(payload)


# -- callbacks --------------------------------------------------------------------------------
LEGACY_CALLBACK = {
    "task_id": "8",
    "task_status": "succeed",
    "task_status_msg": "",
    "created_at": 1722769557708,
    "updated_at": 1722769600000,
    "final_unit_deduction": "1",
    "task_info": {"external_task_id": "e8", "parent_video": {"id": "p", "url": "u"}},
    "task_result": {"videos": [{"id": "v", "url": "https://x/v.mp4", "duration": "5.1"}]},
}


def test_a_legacy_flat_callback_parses() -> None:
    task = Task.from_callback(json.dumps(LEGACY_CALLBACK))

    assert (task.id, task.status, task.external_id) == ("8", TaskStatus.SUCCEED, "e8")
    assert task.videos[0].url == "https://x/v.mp4"


def test_a_legacy_enveloped_callback_parses() -> None:
    body = {"code": 0, "message": "SUCCEED", "request_id": "r", "data": LEGACY_CALLBACK}

    assert Task.from_callback(json.dumps(body).encode()) == Task.from_callback(LEGACY_CALLBACK)


def test_the_protocols_signed_callback_body_parses() -> None:
    task = Task.from_callback(PROTOCOL_CALLBACK_BODY)

    assert (task.id, task.status, task.standard) == (
        "1234567890",
        TaskStatus.SUCCEED,
        ApiStandard.TASKS,
    )
    assert task.updated_at == datetime(2026, 6, 10, 8, 39, 54, 151000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"task_id": "1", ', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"code": 0, "data": {"nothing": 1}}', "neither 'task_id'"),
        (b'{"hello": "world"}', "neither 'task_id'"),
        (b'{"task_id": "", "task_status": "succeed"}', "not a Kling task"),
    ],
)
def test_a_callback_that_is_not_a_task_says_what_arrived(body: bytes, says: str) -> None:
    with pytest.raises(BadCallback, match=says):
        Task.from_callback(body)


def test_a_callback_with_an_unknown_status_still_says_so() -> None:
    with pytest.raises(UnknownTaskStatus):
        Task.from_callback({"id": "1", "status": "teleported"})


# -- writing back -----------------------------------------------------------------------------
def test_a_legacy_create_answer_is_written_in_the_protocols_shape() -> None:
    task = Task(id="9", status=TaskStatus.SUBMITTED, external_id="e9", created_at=T0, updated_at=T0)

    assert task.to_legacy_dict(create_answer=True) == {
        "task_id": "9",
        "task_status": "submitted",
        "task_info": {"external_task_id": "e9"},
        "created_at": 1722769557708,
        "updated_at": 1722769557708,
    }
    assert task.to_tasks_dict(create_answer=True) == {
        "id": "9",
        "status": "submitted",
        "create_time": 1722769557708,
        "update_time": 1722769557708,
        "external_id": "e9",
    }


def test_the_protocols_task_object_is_written_back_as_it_came() -> None:
    wire = json.loads(PROTOCOL_TASK_OBJECT)

    assert Task.from_payload(wire).to_legacy_dict() == wire


def test_a_failed_task_is_written_with_an_empty_result() -> None:
    task = Task(id="1", status=TaskStatus.FAILED, status_msg="content risk")

    assert task.to_legacy_dict()["task_result"] == {}
    assert task.to_tasks_dict()["outputs"] == []
    assert task.to_tasks_dict()["message"] == "content risk"


def test_a_legacy_task_written_in_the_new_standard_reports_units_as_billing() -> None:
    task = Task.from_payload(json.loads(PROTOCOL_TASK_OBJECT))
    wire = task.to_tasks_dict()

    assert wire["status"] == "succeeded"
    assert wire["billing"] == [{"charge_type": "unit", "amount": "1.5"}]
    assert wire["outputs"] == [
        {"type": "video", "id": "…", "url": "https://…mp4", "duration": "5.1"}
    ]
    assert Task.from_payload(wire).units == Decimal("1.5")


# -- properties: whatever Kling sends, parse -> write -> parse gives the same task ----------------
_ms = st.integers(min_value=1_500_000_000_000, max_value=2_500_000_000_000)
_text = st.text(max_size=20)
_url = st.from_regex(r"https://x\.test/[a-z0-9]{1,8}\.(mp4|png|mp3)", fullmatch=True)
_duration = st.one_of(
    st.floats(min_value=0.1, max_value=600, allow_nan=False).map(lambda f: round(f, 3)),
    st.integers(min_value=1, max_value=600),
    st.sampled_from(["5", "5.1", "10.0"]),
)
_amount = st.decimals(min_value=0, max_value=1000, places=2).map(str)
_extra = st.dictionaries(st.sampled_from(["new_field", "fps", "seed"]), _text, max_size=2)


def _video() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"url": _url},
        optional={"id": st.from_regex(r"[0-9]{1,18}", fullmatch=True), "duration": _duration},
    ).flatmap(lambda d: _extra.map(lambda e: {**e, **d}))


_legacy_payload = st.fixed_dictionaries(
    {
        "task_id": st.one_of(
            st.from_regex(r"[0-9]{18}", fullmatch=True), st.integers(1, 10**18 - 1)
        ),
        "task_status": st.sampled_from(["submitted", "processing", "succeed", "failed"]),
    },
    optional={
        "task_status_msg": _text,
        "task_info": st.fixed_dictionaries(
            {}, optional={"external_task_id": st.text(min_size=1, max_size=10)}
        ),
        "task_result": st.fixed_dictionaries(
            {},
            optional={
                "videos": st.lists(_video(), max_size=2),
                "images": st.lists(
                    st.fixed_dictionaries({"index": st.integers(0, 9), "url": _url}), max_size=3
                ),
            },
        ),
        "final_unit_deduction": _amount,
        "created_at": _ms,
        "updated_at": _ms,
    },
)

_output = st.one_of(
    _video().map(lambda v: {"type": "video", **v}),
    st.fixed_dictionaries(
        {"type": st.just("image"), "url": _url}, optional={"group_id": st.integers(0, 5)}
    ),
    st.fixed_dictionaries(
        {"type": st.just("audio"), "mp3_url": _url}, optional={"wav_url": _url, "id": _text}
    ),
)
_billing_item = st.one_of(
    st.fixed_dictionaries(
        {"charge_type": st.just("unit"), "amount": _amount, "package_type": st.just("video")}
    ),
    st.fixed_dictionaries(
        {"charge_type": st.just("cash"), "amount": _amount, "currency": st.just("USD")}
    ),
)
_tasks_payload = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"[0-9]{18}", fullmatch=True),
        "status": st.sampled_from(["submitted", "processing", "succeeded", "failed"]),
    },
    optional={
        "message": _text,
        "external_id": st.text(min_size=1, max_size=10),
        "outputs": st.lists(_output, max_size=3),
        "billing": st.lists(_billing_item, max_size=3),
        "create_time": _ms,
        "update_time": _ms,
    },
)

_PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(a: Task, b: Task) -> None:
    assert a.model_dump(exclude={"raw"}) == b.model_dump(exclude={"raw"})


@_PROPS
@given(_legacy_payload)
def test_any_legacy_task_survives_a_round_trip(payload: dict[str, Any]) -> None:
    task = Task.from_payload(payload)

    _same(Task.from_payload(task.to_legacy_dict()), task)
    _same(Task.from_callback(json.dumps(task.to_legacy_dict())), task)


@_PROPS
@given(_tasks_payload)
def test_any_new_standard_task_survives_a_round_trip(payload: dict[str, Any]) -> None:
    task = Task.from_payload(payload)

    _same(Task.from_payload(task.to_tasks_dict()), task)


@_PROPS
@given(st.one_of(_legacy_payload, _tasks_payload))
def test_either_shape_carries_the_same_core_facts(payload: dict[str, Any]) -> None:
    task = Task.from_payload(payload)

    for wire in (task.to_legacy_dict(), task.to_tasks_dict()):
        again = Task.from_payload(wire)
        assert (again.id, again.status, again.external_id, again.status_msg) == (
            task.id,
            task.status,
            task.external_id,
            task.status_msg,
        )
        assert (again.created_at, again.updated_at, again.units) == (
            task.created_at,
            task.updated_at,
            task.units,
        )
        assert again.result_urls == task.result_urls


@_PROPS
@given(_ms)
def test_epoch_milliseconds_become_aware_utc_and_back(ms: int) -> None:
    task = Task.from_payload({"id": "1", "status": "processing", "create_time": ms})

    assert task.created_at is not None
    assert task.created_at.tzinfo is UTC
    assert task.created_ms == ms


_keys = st.sampled_from(
    [
        "task_result",
        "videos",
        "images",
        "audios",
        "outputs",
        "billing",
        "type",
        "url",
        "duration",
        "amount",
        "index",
        "task_info",
        "parent_video",
        "external_task_id",
        "created_at",
        "update_time",
        "final_unit_deduction",
        "charge_type",
        "currency",
        "message",
    ]
) | st.text(max_size=4)
_any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["video", "image", "audio", "unit", "cash", "1.5"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=15,
)
# Objects that look like a task (an id of some type plus anything), so parsing goes deep.
_task_like = st.tuples(
    st.sampled_from(["task_id", "id"]),
    st.text(min_size=1, max_size=5) | st.integers() | st.none(),
    st.sampled_from(["succeed", "succeeded", "processing", "failed", "queued", None]),
    st.dictionaries(_keys, _any_json, max_size=8),
).map(lambda t: {**t[3], t[0]: t[1], "task_status": t[2], "status": t[2]})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_task_like | _any_json)
def test_any_json_is_a_task_or_a_clear_error_never_a_crash(payload: Any) -> None:
    try:
        task = Task.from_payload(payload)
    except BadResponse:  # UnknownTaskStatus included
        return
    assert Task.from_payload(task.to_legacy_dict()).id == task.id
    assert Task.from_payload(task.to_tasks_dict()).id == task.id
    assert Task.from_callback(json.dumps(task.to_tasks_dict())).id == task.id
