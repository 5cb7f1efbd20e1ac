"""The envelope written: success and error answers, list pages, callback bodies, read back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from error_table import ERROR_TABLE

from klingwatch.kling.envelope import (
    HTTP_STATUS,
    callback_payload,
    dumps,
    failure,
    legacy_page,
    parse_tasks,
    success,
    tasks_page,
    unwrap,
)
from klingwatch.kling.errors import APIError
from klingwatch.kling.models import ApiStandard, Task, TaskStatus

T0 = datetime(2024, 8, 4, 11, 5, 57, 708000, tzinfo=UTC)


def _task(standard: ApiStandard = ApiStandard.LEGACY) -> Task:
    return Task(
        id="1",
        status=TaskStatus.PROCESSING,
        external_id="e",
        created_at=T0,
        updated_at=T0,
        standard=standard,
    )


def test_a_success_answer_is_the_protocols_envelope_and_reads_back() -> None:
    body = success({"task_id": "1"})

    assert set(body) == {"code", "message", "request_id", "data"}
    assert (body["code"], body["message"]) == (0, "SUCCEED")
    uuid.UUID(body["request_id"])
    response = httpx.Response(200, content=dumps(body))
    assert unwrap(response, "GET /x", lookup=False, now=0) == {"task_id": "1"}


@pytest.mark.parametrize(("status", "code", "cls", "retryable", "may_exist"), ERROR_TABLE)
def test_every_error_answer_is_written_with_its_status_and_read_as_its_error(
    status: int, code: int, cls: type[APIError], retryable: bool, may_exist: bool
) -> None:
    body = failure(code, "refused", request_id="r-1")

    assert body == {"code": code, "message": "refused", "request_id": "r-1"}  # no data
    assert HTTP_STATUS[code] == status
    with pytest.raises(APIError) as info:
        unwrap(httpx.Response(status, content=dumps(body)), "POST /x", lookup=False, now=0)
    assert (type(info.value), info.value.request_id) == (cls, "r-1")


def test_list_pages_are_written_in_each_standards_shape_and_read_back() -> None:
    tasks = [_task(), _task().model_copy(update={"id": "2"})]

    legacy = legacy_page(tasks)
    page = tasks_page(tasks, next_cursor="c", has_more=True)

    assert [t["task_id"] for t in legacy] == ["1", "2"]
    assert page["count"] == 2
    assert (page["next_cursor"], page["has_more"]) == ("c", True)
    assert [t.id for t in parse_tasks(legacy, "GET")] == ["1", "2"]
    assert [t.id for t in parse_tasks(page, "POST /tasks")] == ["1", "2"]


def test_callbacks_are_flat_enveloped_or_bare_and_all_read_back() -> None:
    flat = callback_payload(_task())
    enveloped = callback_payload(_task(), enveloped=True)
    bare = callback_payload(_task(ApiStandard.TASKS), enveloped=True)  # never wrapped

    assert flat["task_id"] == enveloped["data"]["task_id"] == "1"
    assert bare["id"] == "1"
    assert "code" not in bare
    for body in (flat, enveloped, bare):
        assert Task.from_callback(dumps(body)).status is TaskStatus.PROCESSING


def test_bodies_are_compact_utf8_json() -> None:
    text = dumps({"message": "内容风险", "n": 1})
    assert text == '{"message":"内容风险","n":1}'.encode()
    assert json.loads(text) == {"message": "内容风险", "n": 1}
