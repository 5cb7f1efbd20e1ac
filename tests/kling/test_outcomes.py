"""The create outcome table: every row of its docstring, and the send cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.kling.error_table import ERROR_TABLE

from klingwatch.kling.errors import (
    APIError,
    BadResponse,
    ConfigurationError,
    InvalidRequest,
    KlingConnectionError,
    KlingTimeout,
    RequestValidationError,
    TaskNotFound,
    error_for,
)
from klingwatch.kling.models import Task
from klingwatch.kling.outcomes import (
    LOOKUP_MISS,
    MAX_CREATE_SENDS,
    CreateAction,
    LookupMiss,
    create_outcome,
    is_duplicate_external_id,
)

A = CreateAction

# What the protocol's error table means for a create, code by code.
EXPECTED = {
    1000: A.PAUSE,
    1001: A.PAUSE,
    1002: A.PAUSE,
    1003: A.PAUSE,  # the client re-signs and retries once itself; still refused: credentials
    1004: A.PAUSE,
    1100: A.PAUSE,
    1101: A.PAUSE,
    1102: A.PAUSE,
    1103: A.PAUSE,
    1200: A.REJECT,
    1201: A.REJECT,
    1202: A.REJECT,
    1203: A.REJECT,
    1300: A.REJECT,
    1301: A.REJECT,
    1302: A.BACK_OFF,
    1303: A.WAIT_FOR_SLOT,
    1304: A.PAUSE,
    5000: A.LOOK_UP,
    5001: A.BACK_OFF,
    5002: A.LOOK_UP,
}


def _error(status: int, code: int | None, message: str = "refused") -> APIError:
    return error_for(status, code, message, request_id="r-1")


@pytest.mark.parametrize(("status", "code"), [(row[0], row[1]) for row in ERROR_TABLE])
def test_every_row_of_the_error_table_has_its_action(status: int, code: int) -> None:
    outcome = create_outcome(_error(status, code), sends=1)
    assert outcome.action is EXPECTED[code]


def test_a_created_task_is_created() -> None:
    task = Task.from_payload({"task_id": "1", "task_status": "submitted"})
    assert create_outcome(task, sends=1).action is A.CREATED


def test_401_and_403_without_a_code_are_a_definite_not_created() -> None:
    for status in (401, 403):
        outcome = create_outcome(_error(status, None, "Forbidden"), sends=1)
        assert outcome.action is A.PAUSE
        assert outcome.action.created_nothing


def test_answers_that_may_hide_a_task_are_looked_up() -> None:
    for exc in (
        KlingTimeout("no answer in time"),
        KlingConnectionError("reset mid-answer"),
        BadResponse("<html>502</html>", status_code=502),
        RuntimeError("a bug after the request left"),
    ):
        assert create_outcome(exc, sends=1).action is A.LOOK_UP, exc


def test_a_connection_refused_before_sending_backs_off() -> None:
    refused = KlingConnectionError("connection refused", may_exist=False)
    assert create_outcome(refused, sends=1).action is A.BACK_OFF


def test_local_refusals_are_rejected_or_pause() -> None:
    bad = RequestValidationError("text2video", [("duration", 'must be "5" or "10"')])
    assert create_outcome(bad, sends=0).action is A.REJECT
    setup = ConfigurationError("creating a kling-3.0-turbo task needs KLING_API_KEY")
    assert create_outcome(setup, sends=0).action is A.PAUSE


def test_a_rejected_task_keeps_klings_own_message_as_its_reason() -> None:
    outcome = create_outcome(_error(400, 1301, "content security policy"), sends=1)
    assert outcome.kling_message == "content security policy"


def test_retry_after_is_passed_on() -> None:
    exc = error_for(429, 1302, "slow down", retry_after=7.0)
    assert create_outcome(exc, sends=1).retry_after == 7.0


@pytest.mark.parametrize(
    "message",
    [
        "external_task_id already exists",
        "The external task id is already in use",
        "duplicate external_task_id",
        "externalTaskId exists",  # camel case, as some proxies write it
    ],
)
def test_a_duplicate_external_id_is_looked_up(message: str) -> None:
    exc = _error(400, 1201, message)
    assert is_duplicate_external_id(exc)
    assert create_outcome(exc, sends=1).action is A.LOOK_UP


@pytest.mark.parametrize(
    "message",
    [
        "external_task_id does not exist",
        "external_task_id must be at most 64 characters, used: 80",
        "Invalid parameters: the image used is too small",
        "prompt exists but is too long",
    ],
)
def test_other_1201s_are_refusals_even_when_they_mention_the_external_id(message: str) -> None:
    exc = _error(400, 1201, message)
    assert not is_duplicate_external_id(exc)
    assert create_outcome(exc, sends=1).action is A.REJECT


def test_a_bad_request_on_a_resend_is_looked_up_not_believed() -> None:
    exc = _error(400, 1201, "invalid value")
    assert create_outcome(exc, sends=1).action is A.REJECT
    assert create_outcome(exc, sends=2).action is A.LOOK_UP
    # Content policy is about the request itself, never a duplicate in disguise.
    assert create_outcome(_error(400, 1301, "content"), sends=2).action is A.REJECT


def test_a_task_not_found_is_never_a_duplicate() -> None:
    exc = TaskNotFound("external_task_id already exists", status_code=400, code=1201)
    assert not is_duplicate_external_id(exc)


def test_a_lookup_miss_resends_until_the_cap_then_gives_up() -> None:
    actions = [create_outcome(LOOKUP_MISS, sends=n).action for n in range(1, 6)]
    cap = MAX_CREATE_SENDS
    assert actions[: cap - 1] == [A.RESEND] * (cap - 1)
    assert set(actions[cap - 1 :]) == {A.GIVE_UP}
    assert "not sending it again" in create_outcome(LOOKUP_MISS, sends=cap).reason
    assert create_outcome(LOOKUP_MISS, sends=1, max_sends=1).action is A.GIVE_UP
    assert LookupMiss() is LOOKUP_MISS


@given(
    status=st.sampled_from([400, 401, 403, 404, 429, 500, 502, 503, 504]),
    code=st.one_of(st.none(), st.integers(0, 9999)),
    message=st.text(max_size=80),
    sends=st.integers(0, 10),
)
def test_an_answer_that_says_not_created_never_leaves_a_task_to_look_up(
    status: int, code: int | None, message: str, sends: int
) -> None:
    """Whatever Kling answers: may_exist errors are looked up, definite refusals are not."""
    exc = _error(status, code, message)
    outcome = create_outcome(exc, sends=sends)
    if exc.may_exist:
        assert outcome.action is A.LOOK_UP
    elif outcome.action is A.LOOK_UP:
        assert isinstance(exc, InvalidRequest)
        assert is_duplicate_external_id(exc) or sends > 1
    else:
        assert outcome.action.created_nothing
