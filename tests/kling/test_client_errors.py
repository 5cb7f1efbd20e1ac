"""Every way a Kling call fails, as a caller of KlingClient sees it: class, retry, may_exist."""

from __future__ import annotations

import email.utils

import httpx
import pytest
from error_table import ERROR_TABLE
from fakekling import FakeKling, envelope, error, make_client

from klingwatch.kling.errors import (
    APIError,
    AuthenticationError,
    BadResponse,
    ConcurrencyLimited,
    ContentPolicyError,
    KlingConnectionError,
    KlingError,
    KlingTimeout,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    UnknownTaskStatus,
)
from klingwatch.kling.retry import NO_RETRY, Backoff, RetryPolicy


@pytest.mark.parametrize(("status", "code", "cls", "retryable", "may_exist"), ERROR_TABLE)
async def test_every_row_of_the_error_table_through_a_create(
    status: int, code: int, cls: type[APIError], retryable: bool, may_exist: bool
) -> None:
    fake = FakeKling()
    # Two answers, in case the client re-signs once (1003/1004); nothing else is re-sent.
    fake.script += [error(status, code, "refused"), error(status, code, "refused")]
    async with make_client(fake) as kling:
        with pytest.raises(APIError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e")

    err = info.value
    assert type(err) is cls
    assert (err.status_code, err.code, err.request_id) == (status, code, "req-1")
    assert (err.retryable, err.may_exist) == (retryable, may_exist)
    assert "refused" in str(err)
    assert len(fake.requests) == (2 if code in (1003, 1004) else 1)


async def test_an_unknown_code_falls_back_by_http_status() -> None:
    fake = FakeKling()
    fake.script.append(error(503, 5999, "new kind of outage"))
    async with make_client(fake, retry=NO_RETRY) as kling:
        with pytest.raises(ServiceUnavailable):
            await kling.get("text2video", "1")


async def test_an_error_code_inside_http_200_is_still_an_error() -> None:
    fake = FakeKling()
    fake.script.append(httpx.Response(200, json=envelope(code=1301, message="risky")))
    async with make_client(fake) as kling:
        with pytest.raises(ContentPolicyError):
            await kling.create("text2video", {"prompt": "a fox"})


BAD_BODIES = [
    pytest.param(502, b"<html><body>502 Bad Gateway</body></html>", id="html"),
    pytest.param(200, b'{"code": 0, "message": "SUCCEED", "data": {"task_id": "1', id="truncated"),
    pytest.param(200, b"", id="empty"),
    pytest.param(200, b'{"task_id": "1", "task_status": "succeed"}', id="no-envelope"),
    pytest.param(200, b'[{"code": 0}]', id="json-array"),
    pytest.param(200, b'{"code": "zero", "data": {}}', id="code-not-a-number"),
    pytest.param(200, b'{"code": 0, "message": "SUCCEED"}', id="success-without-data"),
    pytest.param(200, b'{"code": 0, "data": {"status_of": "?"}}', id="data-not-a-task"),
    pytest.param(200, b"\xff\xfe\x00garbage", id="binary"),
]


@pytest.mark.parametrize(("status", "content"), BAD_BODIES)
async def test_a_body_that_is_not_kling_envelope_is_bad_response(
    status: int, content: bytes
) -> None:
    fake = FakeKling()
    fake.script.append(httpx.Response(status, content=content))
    async with make_client(fake, retry=NO_RETRY) as kling:
        with pytest.raises(BadResponse) as info:
            await kling.get("text2video", "1")
    assert info.value.retryable
    assert str(info.value).startswith("GET /v1/videos/text2video/1: ")


@pytest.mark.parametrize(
    ("status", "content", "cls", "may_exist"),
    [
        *(pytest.param(*p.values, BadResponse, True, id=p.id) for p in BAD_BODIES),
        # Refused at the door (Kling's gateway, a proxy): whatever the body, nothing was made.
        pytest.param(401, b"", AuthenticationError, False, id="401-empty"),
        pytest.param(401, b'{"error": "no"}', AuthenticationError, False, id="401-no-code"),
        pytest.param(403, b"<html>Forbidden</html>", PermissionDenied, False, id="403-page"),
    ],
)
async def test_a_create_answered_with_garbage_may_exist_unless_refused_and_is_not_resent(
    status: int, content: bytes, cls: type[KlingError], may_exist: bool
) -> None:
    fake = FakeKling()
    fake.script.append(httpx.Response(status, content=content))
    async with make_client(fake) as kling:
        with pytest.raises(cls) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e")
    assert info.value.may_exist is may_exist
    assert len(fake.requests) == 1
    assert f"HTTP {status}" in str(info.value) or status == 200


async def test_html_error_page_message_says_what_arrived() -> None:
    fake = FakeKling()
    fake.script.append(
        httpx.Response(
            502, content=b"<html>Bad Gateway</html>", headers={"content-type": "text/html"}
        )
    )
    async with make_client(fake, retry=NO_RETRY) as kling:
        with pytest.raises(BadResponse) as info:
            await kling.get("text2video", "1")
    assert "HTTP 502" in str(info.value)
    assert "text/html" in str(info.value)
    assert "Bad Gateway" in str(info.value)
    assert info.value.status_code == 502


# -- retries -----------------------------------------------------------------------------------
async def test_a_read_answered_500_then_200_is_retried() -> None:
    fake = FakeKling()
    made = fake.add()
    fake.script.append(error(500, 5000, "internal"))
    start = fake.clock.time()
    async with make_client(fake) as kling:
        task = await kling.get("text2video", made.id)

    assert task.id == made.id
    assert len(fake.requests) == 2
    assert 0.5 <= fake.clock.time() - start <= 1.5  # one backoff: 0.5 s + up to 1 s jitter
    assert kling.stats.retries == 1
    assert kling.stats.by_outcome == {("500", "5000"): 1, ("200", "0"): 1}


@pytest.mark.parametrize(
    "failure",
    [
        error(429, 1302, "slow down"),
        error(503, 5001, "maintenance"),
        error(504, 5002, "timeout"),
        httpx.Response(502, content=b"<html>proxy</html>"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ConnectError("connection refused"),
    ],
    ids=["1302", "5001", "5002", "html", "timeout", "dropped", "refused"],
)
async def test_passing_failures_of_a_read_are_retried(failure: httpx.Response | Exception) -> None:
    fake = FakeKling()
    made = fake.add()
    fake.script += [failure, failure]
    async with make_client(fake) as kling:
        assert (await kling.get("text2video", made.id)).id == made.id
    assert len(fake.requests) == 3


async def test_retry_after_is_honoured_exactly() -> None:
    fake = FakeKling()
    made = fake.add()
    fake.script.append(error(429, 1302, "rate limited", **{"Retry-After": "7"}))
    start = fake.clock.time()
    async with make_client(fake) as kling:
        await kling.get("text2video", made.id)
    assert fake.clock.time() - start == 7


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    fake = FakeKling()
    made = fake.add()
    when = email.utils.formatdate(fake.clock.time() + 12, usegmt=True)
    fake.script.append(error(503, 5001, "maintenance", **{"Retry-After": when}))
    start = fake.clock.time()
    async with make_client(fake) as kling:
        await kling.get("text2video", made.id)
    assert fake.clock.time() - start == 12


async def test_a_retry_after_longer_than_the_policy_allows_is_raised_at_once() -> None:
    fake = FakeKling()
    fake.script.append(error(429, 1302, "rate limited", **{"Retry-After": "3600"}))
    async with make_client(fake) as kling:
        with pytest.raises(RateLimited) as info:
            await kling.get("text2video", "1")
    assert info.value.retry_after == 3600
    assert len(fake.requests) == 1


async def test_retries_stop_when_the_policy_is_spent_and_the_last_error_is_raised() -> None:
    fake = FakeKling()
    fake.script += [error(500, 5000, "internal")] * 10
    policy = RetryPolicy(attempts=4, backoff=Backoff(initial=0.5, jitter=0))
    start = fake.clock.time()
    async with make_client(fake, retry=policy) as kling:
        with pytest.raises(ServerError):
            await kling.get("text2video", "1")
    assert len(fake.requests) == 4
    assert fake.clock.time() - start == 0.5 + 1 + 2


async def test_errors_that_cannot_pass_are_not_retried() -> None:
    fake = FakeKling()
    fake.script += [httpx.Response(200, json=envelope({"task_id": "1", "task_status": "odd"}))]
    async with make_client(fake) as kling:
        with pytest.raises(UnknownTaskStatus):
            await kling.get("text2video", "1")
    assert len(fake.requests) == 1


# -- ambiguous creates -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failure", "cls", "may_exist"),
    [
        (error(500, 5000, "internal"), ServerError, True),
        (error(504, 5002, "internal timeout"), ServerError, True),
        (httpx.ReadTimeout("read timed out"), KlingTimeout, True),
        (httpx.WriteTimeout("write timed out"), KlingTimeout, True),
        (httpx.RemoteProtocolError("peer closed connection"), KlingConnectionError, True),
        (httpx.ReadError("connection reset"), KlingConnectionError, True),
        (httpx.ConnectError("connection refused"), KlingConnectionError, False),
        (httpx.ConnectTimeout("connect timed out"), KlingTimeout, False),
        (error(429, 1303, "parallel task over resource pack limit"), ConcurrencyLimited, False),
    ],
    ids=lambda v: v if isinstance(v, bool) else getattr(v, "__name__", None),
)
async def test_a_create_is_never_resent_and_says_whether_the_task_may_exist(
    failure: httpx.Response | Exception, cls: type[KlingError], may_exist: bool
) -> None:
    fake = FakeKling()
    fake.script.append(failure)
    async with make_client(fake) as kling:
        with pytest.raises(KlingError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e-77")

    assert type(info.value) is cls
    assert info.value.may_exist is may_exist
    assert len(fake.calls("POST")) == 1
    if isinstance(failure, Exception):
        assert info.value.__cause__ is failure  # translated at one boundary, chained
        kind = "timeout" if cls is KlingTimeout else "connection"
        assert kling.stats.by_outcome == {(kind, ""): 1}


async def test_an_ambiguous_create_is_recovered_by_external_id() -> None:
    fake = FakeKling(lose_answers=1)  # the task is created, then the answer is lost
    async with make_client(fake) as kling:
        with pytest.raises(KlingConnectionError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e-88")
        assert info.value.may_exist
        found = await kling.get_by_external_id("text2video", "e-88")

    assert found.external_id == "e-88"
    assert len(fake.tasks) == 1
    assert len(fake.calls("POST")) == 1
