"""AK/SK JWTs and API keys: exact claims, reuse, re-signing, and secrets kept out of sight."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import jwt
import pytest
from kling_world import AK, API_KEY, BASE, SK, kling_world

from klingwatch.clock import ManualClock
from klingwatch.environment import DEFAULT_API_BASE
from klingwatch.kling.auth import TOKEN_LIFETIME, TOKEN_REFRESH_MARGIN, Credentials, KlingAuth
from klingwatch.kling.client import KlingClient
from klingwatch.kling.envelope import dumps, failure
from klingwatch.kling.errors import AuthenticationError, MissingCredentials, TokenExpired
from klingwatch.sandbox import Answer


def bearer(request: httpx.Request) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


def test_jwt_has_exactly_the_protocol_header_and_claims() -> None:
    clock = ManualClock(start=1_767_225_600.7)
    token = KlingAuth(Credentials(AK, SK), clock=clock).token()

    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, SK, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"iss": AK, "exp": 1_767_225_600 + 1800, "nbf": 1_767_225_600 - 5}
    assert all(type(v) is int for k, v in claims.items() if k != "iss")


async def test_one_token_serves_many_requests() -> None:
    world = kling_world()
    task = world.seed()
    async with world.client() as kling:
        for _ in range(3):
            await kling.get("text2video", task.task_id)
            world.clock.advance(60)

    tokens = {bearer(r) for r in world.requests}
    assert len(tokens) == 1


async def test_token_is_resigned_shortly_before_it_expires() -> None:
    world = kling_world()
    task = world.seed()
    async with world.client() as kling:
        await kling.get("text2video", task.task_id)
        world.clock.advance(TOKEN_LIFETIME - TOKEN_REFRESH_MARGIN - 1)
        await kling.get("text2video", task.task_id)
        world.clock.advance(2)  # now inside the refresh margin: a fresh token, before any 1004
        await kling.get("text2video", task.task_id)

    first, second, third = (bearer(r) for r in world.requests)
    assert first == second != third
    assert all(r.url.path.endswith(task.task_id) for r in world.requests)
    claims = jwt.decode(third, SK, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] == int(world.clock.time()) + 1800


@pytest.mark.parametrize(
    ("code", "server_skew", "refused_at"),
    [(1004, 1700.0, 1), (1003, -100.0, 0)],  # Kling's clock ahead (expired) / behind (too early)
)
async def test_token_refused_for_time_is_resigned_with_the_servers_time_and_sent_once_more(
    code: int, server_skew: float, refused_at: int
) -> None:
    world = kling_world(clock_offset=server_skew)
    task = world.seed()
    async with world.client() as kling:
        await kling.get("text2video", task.task_id)
        world.clock.advance(200)
        await kling.get("text2video", task.task_id)

    assert len(world.requests) == 3
    refused, resent = world.requests[refused_at : refused_at + 2]
    assert bearer(refused) != bearer(resent)
    assert kling.stats.by_outcome == {("401", str(code)): 1, ("200", "0"): 2}


async def test_an_expiry_answer_without_a_date_still_gets_one_fresh_signature() -> None:
    world = kling_world()
    task = world.seed()
    expired = dumps(failure(1004, "token expired"))
    world.script.on_read(task.task_id, Answer.raw(401, expired))  # a raw answer: no Date
    async with world.client() as kling:
        got = await kling.get("text2video", task.task_id)
        assert "tokens_signed=2" in repr(kling.auth)

    assert "date" not in world.recorder.answers[0].headers
    assert got.id == task.task_id
    assert len(world.requests) == 2


async def test_a_create_refused_for_an_expired_token_is_resent_once() -> None:
    world = kling_world()
    world.script.on_create("e1", Answer.error(1004, "token expired"))
    async with world.client() as kling:
        task = await kling.create("text2video", {"prompt": "a fox"}, external_task_id="e1")

    assert task.external_id == "e1"
    assert len(world.recorder.calls("POST")) == 2
    assert len(world.tasks) == 1


async def test_a_second_expiry_answer_is_not_retried_again() -> None:
    world = kling_world()
    world.script.on_create("*", Answer.error(1004, "expired"), times=2)
    async with world.client() as kling:
        with pytest.raises(TokenExpired) as info:
            await kling.create("text2video", {"prompt": "a fox"})

    assert len(world.requests) == 2
    assert "clock" in str(info.value)


async def test_a_wrong_secret_is_an_authentication_error_without_retry() -> None:
    world = kling_world()
    client = KlingClient(
        access_key=AK,
        secret_key="wrong",
        base_url=BASE,
        transport=world.recorder,
        clock=world.clock,
    )
    async with client as kling:
        with pytest.raises(AuthenticationError) as info:
            await kling.get("text2video", "123")

    assert type(info.value) is AuthenticationError
    assert info.value.code == 1002
    assert len(world.requests) == 1


async def test_api_key_is_sent_as_is_and_preferred_over_the_key_pair() -> None:
    world = kling_world()
    task = world.seed()
    async with world.client(api_key=True) as kling:
        await kling.get("text2video", task.task_id)
        assert kling.has_api_key

    assert bearer(world.requests[0]) == API_KEY


async def test_api_key_refused_as_expired_is_not_retried() -> None:
    world = kling_world()
    world.script.on_read("1", Answer.error(1004, "expired"))
    async with world.client(api_key=True, key_pair=False) as kling:
        with pytest.raises(TokenExpired):
            await kling.get("text2video", "1")
    assert len(world.requests) == 1


def test_no_credentials_names_every_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env or klingwatch.toml here
    with pytest.raises(MissingCredentials) as info:
        KlingClient()
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_API_KEY"):
        assert name in str(info.value)


def test_half_a_key_pair_names_the_missing_half() -> None:
    with pytest.raises(MissingCredentials) as info:
        Credentials(access_key=AK)
    assert "KLING_SECRET_KEY" in str(info.value)
    assert "KLING_API_KEY" in str(info.value)
    with pytest.raises(MissingCredentials):
        Credentials(access_key="  ", secret_key="\n", api_key="")


async def test_without_arguments_the_client_reads_the_kling_variables_stripped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = kling_world()
    task = world.seed()
    monkeypatch.setenv("KLING_ACCESS_KEY", f" {AK}\n")
    monkeypatch.setenv("KLING_SECRET_KEY", SK)
    monkeypatch.setenv("KLING_API_BASE", f"{BASE}/")
    async with KlingClient(transport=world.recorder, clock=world.clock) as kling:
        assert kling.base_url == BASE
        assert not kling.has_api_key
        await kling.get("text2video", task.task_id)
    claims = jwt.decode(
        bearer(world.requests[0]), SK, algorithms=["HS256"], options={"verify_exp": False}
    )
    assert claims["iss"] == AK  # signed with the stripped pair (the sandbox's clock is 2026)


async def test_without_kling_api_base_the_client_talks_to_the_default_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    async with KlingClient() as kling:
        assert kling.base_url == DEFAULT_API_BASE


async def test_a_library_client_ignores_a_broken_env_file_and_klingwatch_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command line reads these files (and would refuse them); a library user's client must
    # not even open them: only its arguments and the KLING_* variables count.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "klingwatch.toml").write_text("this is = = not toml [\n")
    (tmp_path / ".env").write_text(
        "KLINGWATCH_TIME_SCALE=fast\nKLING_API_KEY=from-dotenv\nKLING_API_BASE=nonsense\n"
    )
    with pytest.raises(MissingCredentials):
        KlingClient()  # KLING_API_KEY in .env is not a KLING_* variable of the environment
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    async with KlingClient() as kling:
        assert kling.has_api_key
        assert kling.base_url == DEFAULT_API_BASE
        assert kling.clock.scale == 1.0  # KLINGWATCH_TIME_SCALE is the command line's, not ours


async def test_secrets_never_reach_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world = kling_world()
    task = world.seed()
    world.script.on_read(task.task_id, Answer.error(1004, "expired"))
    kling = world.client(api_key=False)
    async with kling:
        await kling.get("text2video", task.task_id)
        world.script.on_read(task.task_id, Answer.error(1002, "invalid"))
        with pytest.raises(AuthenticationError) as info:
            await kling.get("text2video", task.task_id)
    auth = KlingAuth(Credentials(AK, SK, API_KEY))
    tokens = {bearer(r) for r in world.requests}

    seen = " ".join(
        [
            repr(kling),
            repr(auth),
            repr(Credentials(AK, SK, API_KEY)),
            str(info.value),
            repr(info.value),
            caplog.text,
        ]
    )
    for secret in (SK, API_KEY, *tokens):
        assert secret not in seen
    assert "DEBUG" in {r.levelname for r in caplog.records}  # the requests were logged


def test_a_short_secret_key_signs_without_warnings() -> None:
    # Kling chooses the secret's length; PyJWT's short-HMAC-key warning must not reach users
    # (pytest turns warnings into errors here).
    token = KlingAuth(Credentials(AK, "short")).token()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
