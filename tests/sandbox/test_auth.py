"""Authentication: JWT checks on the sandbox clock, API keys, Kling's 1000-1004."""

from __future__ import annotations

import pytest
from sandboxkit import ACCESS_KEY, SandboxFactory, client_for, jwt_for
from starlette.applications import Starlette

from klingwatch.clock import ManualClock

LIST = "/v1/videos/text2video"


async def code_for(app: Starlette, token: str | None, raw_header: str | None = None) -> int:
    async with client_for(app, token) as api:
        headers = {"Authorization": raw_header} if raw_header is not None else {}
        r = await api.get(LIST, headers=headers)
    code: int = r.json()["code"]
    if code:
        assert r.status_code == 401
        assert "data" not in r.json()
    return code


async def test_a_fresh_jwt_and_the_api_key_are_accepted(app: Starlette, clock: ManualClock) -> None:
    assert await code_for(app, jwt_for(clock.time())) == 0
    assert await code_for(app, "api-key-test") == 0


async def test_no_header_answers_1001(app: Starlette) -> None:
    assert await code_for(app, None) == 1001


async def test_a_header_that_is_not_bearer_answers_1000(app: Starlette) -> None:
    assert await code_for(app, None, raw_header="Basic abc") == 1000


@pytest.mark.parametrize(
    "token",
    [
        "not-a-key",
        "a.b.c",
        jwt_for(1_767_225_600, secret="wrong-secret-wrong-secret-wrong-secret"),
        jwt_for(1_767_225_600, key="unknown-access-key"),
    ],
)
async def test_bad_tokens_answer_1002(app: Starlette, token: str) -> None:
    assert await code_for(app, token) == 1002


async def test_a_token_not_yet_valid_answers_1003(app: Starlette, clock: ManualClock) -> None:
    assert await code_for(app, jwt_for(clock.time() + 60)) == 1003


async def test_an_expired_token_answers_1004_on_the_sandbox_clock(
    app: Starlette, clock: ManualClock
) -> None:
    token = jwt_for(clock.time())
    assert await code_for(app, token) == 0
    clock.advance(1801)
    assert await code_for(app, token) == 1004


async def test_leeway_tolerates_small_skew(make_app: SandboxFactory, clock: ManualClock) -> None:
    app = make_app(jwt_leeway=30)
    assert await code_for(app, jwt_for(clock.time() + 20)) == 0


async def test_a_keyless_sandbox_is_open(make_app: SandboxFactory) -> None:
    app = make_app(access_keys={}, api_keys=())
    assert await code_for(app, None) == 0


async def test_a_keyless_sandbox_can_be_closed(make_app: SandboxFactory) -> None:
    app = make_app(access_keys={}, api_keys=(), open_when_keyless=False)
    assert await code_for(app, jwt_for(0.0, key=ACCESS_KEY)) == 1002
