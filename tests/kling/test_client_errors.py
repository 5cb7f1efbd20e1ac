"""Every way a Kling call fails, as a caller of KlingClient sees it: class, retry, may_exist.

Kling's answers come from the sandbox (scripted where a test needs one); what no server answers
(a refused connection, a garbled body) from tiny ``httpx.MockTransport`` handlers.
"""

from __future__ import annotations

import email.utils

import httpx
import pytest
from error_table import ERROR_TABLE
from kling_world import answering, kling_world

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
from klingwatch.sandbox import Answer


@pytest.mark.parametrize(("status", "code", "cls", "retryable", "may_exist"), ERROR_TABLE)
async def test_every_row_of_the_error_table_through_a_create(
    status: int, code: int, cls: type[APIError], retryable: bool, may_exist: bool
) -> None:
    world = kling_world()
    # Two answers, in case the client re-signs once (1003/1004); nothing else is re-sent.
    world.script.on_create("e", Answer.error(code, "refused", status=status), times=2)
    async with world.client() as kling:
        with pytest.raises(APIError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e")

    err = info.value
    sent_id = world.recorder.answers[-1].json()["request_id"]
    assert type(err) is cls
    assert (err.status_code, err.code, err.request_id) == (status, code, sent_id)
    assert (err.retryable, err.may_exist) == (retryable, may_exist)
    assert "refused" in str(err)
    assert len(world.requests) == (2 if code in (1003, 1004) else 1)
    assert not world.tasks


async def test_an_unknown_code_falls_back_by_http_status() -> None:
    world = kling_world()
    world.script.on_read("1", Answer.error(5999, "new kind of outage", status=503))
    async with world.client(retry=NO_RETRY) as kling:
        with pytest.raises(ServiceUnavailable):
            await kling.get("text2video", "1")


async def test_an_error_code_inside_http_200_is_still_an_error() -> None:
    world = kling_world()
    world.script.on_create("*", Answer.error(1301, "risky", status=200))
    async with world.client() as kling:
        with pytest.raises(ContentPolicyError):
            await kling.create("text2video", {"prompt": "a fox"})
    assert not world.tasks


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
    async with answering(
        lambda r: httpx.Response(status, content=content), retry=NO_RETRY
    ) as kling:
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
    sent: list[httpx.Request] = []

    def garbled(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, content=content)

    async with answering(garbled) as kling:
        with pytest.raises(cls) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e")
    assert info.value.may_exist is may_exist
    assert len(sent) == 1
    assert f"HTTP {status}" in str(info.value) or status == 200


async def test_html_error_page_message_says_what_arrived() -> None:
    page = Answer.raw(502, b"<html>Bad Gateway</html>", content_type="text/html")
    world = kling_world()
    world.script.on_read("1", page)  # a proxy's page in front of Kling
    async with world.client(retry=NO_RETRY) as kling:
        with pytest.raises(BadResponse) as info:
            await kling.get("text2video", "1")
    assert "HTTP 502" in str(info.value)
    assert "text/html" in str(info.value)
    assert "Bad Gateway" in str(info.value)
    assert info.value.status_code == 502


# -- retries -----------------------------------------------------------------------------------
async def test_a_read_answered_500_then_200_is_retried() -> None:
    world = kling_world()
    made = world.seed()
    world.script.on_read(made.task_id, Answer.error(5000, "internal"))
    start = world.clock.time()
    async with world.client() as kling:
        task = await kling.get("text2video", made.task_id)

    assert task.id == made.task_id
    assert len(world.requests) == 2
    assert 0.5 <= world.clock.time() - start <= 1.5  # one backoff: 0.5 s + up to 1 s jitter
    assert kling.stats.retries == 1
    assert kling.stats.by_outcome == {("500", "5000"): 1, ("200", "0"): 1}


@pytest.mark.parametrize(
    "failure",
    [
        Answer.error(1302, "slow down"),
        Answer.error(5001, "maintenance"),
        Answer.error(5002, "timeout"),
        Answer.raw(502, b"<html>proxy</html>", content_type="text/html"),
        Answer.timeout(),
        Answer.dropped(),
    ],
    ids=["1302", "5001", "5002", "html", "timeout", "dropped"],
)
async def test_passing_failures_of_a_read_are_retried(failure: Answer) -> None:
    world = kling_world()
    made = world.seed()
    world.script.on_read(made.task_id, failure, times=2)
    async with world.client() as kling:
        assert (await kling.get("text2video", made.task_id)).id == made.task_id
    assert len(world.requests) == 3


class _RefusingFirst(httpx.AsyncBaseTransport):
    """No server at first (the connection is refused ``times`` times), then the sandbox."""

    def __init__(self, inner: httpx.AsyncBaseTransport, times: int) -> None:
        self.inner = inner
        self.refusals_left = times
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.refusals_left > 0:
            self.refusals_left -= 1
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_read_whose_connection_is_refused_is_retried() -> None:
    world = kling_world()
    made = world.seed()
    refusing = _RefusingFirst(world.recorder, times=2)
    async with world.client(transport=refusing) as kling:
        assert (await kling.get("text2video", made.task_id)).id == made.task_id
    assert refusing.sent == 3


async def test_retry_after_is_honoured_exactly() -> None:
    world = kling_world()
    made = world.seed()
    world.script.on_read(made.task_id, Answer.error(1302, headers={"Retry-After": "7"}))
    start = world.clock.time()
    async with world.client() as kling:
        await kling.get("text2video", made.task_id)
    assert world.clock.time() - start == 7


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    world = kling_world()
    made = world.seed()
    when = email.utils.formatdate(world.clock.time() + 12, usegmt=True)
    world.script.on_read(made.task_id, Answer.error(5001, headers={"Retry-After": when}))
    start = world.clock.time()
    async with world.client() as kling:
        await kling.get("text2video", made.task_id)
    assert world.clock.time() - start == 12


async def test_a_retry_after_longer_than_the_policy_allows_is_raised_at_once() -> None:
    world = kling_world()
    world.script.on_read("1", Answer.error(1302, headers={"Retry-After": "3600"}))
    async with world.client() as kling:
        with pytest.raises(RateLimited) as info:
            await kling.get("text2video", "1")
    assert info.value.retry_after == 3600
    assert len(world.requests) == 1


async def test_retries_stop_when_the_policy_is_spent_and_the_last_error_is_raised() -> None:
    world = kling_world()
    world.script.on_read("1", Answer.error(5000, "internal"), times=10)
    policy = RetryPolicy(attempts=4, backoff=Backoff(initial=0.5, jitter=0))
    start = world.clock.time()
    async with world.client(retry=policy) as kling:
        with pytest.raises(ServerError):
            await kling.get("text2video", "1")
    assert len(world.requests) == 4
    assert world.clock.time() - start == 0.5 + 1 + 2


async def test_errors_that_cannot_pass_are_not_retried() -> None:
    sent: list[httpx.Request] = []

    def odd(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        task = {"task_id": "1", "task_status": "odd"}
        return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "data": task})

    async with answering(odd) as kling:
        with pytest.raises(UnknownTaskStatus):
            await kling.get("text2video", "1")
    assert len(sent) == 1


# -- ambiguous creates -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "cls", "may_exist", "cause"),
    [
        (Answer.error(5000, "internal"), ServerError, True, None),
        (Answer.error(5002, "internal timeout"), ServerError, True, None),
        (Answer.timeout(), KlingTimeout, True, httpx.ReadTimeout),
        (Answer.dropped(), KlingConnectionError, True, httpx.RemoteProtocolError),
        ("created-then-drop", KlingConnectionError, True, httpx.RemoteProtocolError),
        (Answer.error(1303), ConcurrencyLimited, False, None),
    ],
    ids=["5000", "5002", "timeout", "dropped", "created-then-dropped", "1303"],
)
async def test_a_create_is_never_resent_and_says_whether_the_task_may_exist(
    answer: Answer | str, cls: type[KlingError], may_exist: bool, cause: type[Exception] | None
) -> None:
    world = kling_world()
    world.script.on_create("e-77", answer)
    async with world.client() as kling:
        with pytest.raises(KlingError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e-77")

    assert type(info.value) is cls
    assert info.value.may_exist is may_exist
    assert len(world.recorder.calls("POST")) == 1
    assert world.sandbox.state.creates_seen["e-77"] == 1
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)  # translated at one boundary, chained
        kind = "timeout" if cls is KlingTimeout else "connection"
        assert kling.stats.by_outcome == {(kind, ""): 1}


@pytest.mark.parametrize(
    ("failure", "cls", "may_exist"),
    [
        (httpx.WriteTimeout("write timed out"), KlingTimeout, True),
        (httpx.ReadError("connection reset"), KlingConnectionError, True),
        (httpx.ConnectError("connection refused"), KlingConnectionError, False),
        (httpx.ConnectTimeout("connect timed out"), KlingTimeout, False),
    ],
    ids=lambda v: v if isinstance(v, bool) else getattr(v, "__name__", None),
)
async def test_a_create_the_network_failed_says_whether_the_task_may_exist(
    failure: Exception, cls: type[KlingError], may_exist: bool
) -> None:
    # No server answers these: the network fails before (or while) the request leaves.
    sent: list[httpx.Request] = []

    def failing(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise failure

    async with answering(failing) as kling:
        with pytest.raises(KlingError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e-77")

    assert type(info.value) is cls
    assert info.value.may_exist is may_exist
    assert len(sent) == 1
    assert info.value.__cause__ is failure  # translated at one boundary, chained
    kind = "timeout" if cls is KlingTimeout else "connection"
    assert kling.stats.by_outcome == {(kind, ""): 1}


async def test_an_ambiguous_create_is_recovered_by_external_id() -> None:
    world = kling_world()
    world.script.on_create("e-88", "created-then-drop")  # created, then the answer is lost
    async with world.client() as kling:
        with pytest.raises(KlingConnectionError) as info:
            await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e-88")
        assert info.value.may_exist
        found = await kling.get_by_external_id("text2video", "e-88")

    assert found.external_id == "e-88"
    assert len(world.tasks) == 1
    assert len(world.recorder.calls("POST")) == 1
