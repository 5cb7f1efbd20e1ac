"""`klingwatch doctor` against a sandbox on a real socket."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.cli.doctor import Answer, Check, clock_check, run_checks
from klingwatch.clock import ManualClock
from klingwatch.sandbox import SandboxConfig
from klingwatch.sandbox.server import serve_in_thread
from klingwatch.settings import Settings
from klingwatch.store import Ledger

AK = "ak-doctor"
SK = "sk-doctor-secret-long-enough-for-hs256-signing"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with serve_in_thread(SandboxConfig(access_keys={AK: SK}, api_keys=("api-doctor",))) as url:
        yield url


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def doctor(*args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = CliRunner().invoke(app, ["doctor", "--json", *args])
    return result.exit_code, {c["name"]: c for c in json.loads(result.stdout)}


def test_all_good_with_an_ak_sk_pair(
    sandbox: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_API_BASE", sandbox)
    monkeypatch.setenv("KLING_ACCESS_KEY", AK)
    monkeypatch.setenv("KLING_SECRET_KEY", SK)
    code, checks = doctor()
    assert code == 0
    assert checks["AK/SK pair"]["outcome"] == "ok"
    assert checks["AK/SK pair"]["detail"] == f"accepted by {sandbox} (no tasks yet)"
    assert checks["API key"]["outcome"] == "skip"
    assert checks["clock"]["outcome"] == "ok"
    assert checks["clock"]["detail"].startswith("in step with Kling")
    assert checks["ledger"]["outcome"] == "ok"
    assert "created on first use" in checks["ledger"]["detail"]
    assert checks["callbacks"]["outcome"] == "skip"


def test_refused_credentials_say_so(
    sandbox: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_API_BASE", sandbox)
    monkeypatch.setenv("KLING_API_KEY", "not-a-key-this-sandbox-knows")
    code, checks = doctor()
    assert code == 1
    assert checks["API key"]["outcome"] == "FAIL"
    assert checks["API key"]["detail"].startswith("refused by Kling")
    assert "not-a-key-this-sandbox-knows" not in json.dumps(checks)


@pytest.mark.parametrize("broken", ["AK/SK pair", "API key"])
def test_each_credential_that_is_set_is_checked_on_its_own(
    sandbox: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    monkeypatch.setenv("KLING_API_BASE", sandbox)
    monkeypatch.setenv("KLING_ACCESS_KEY", AK)
    monkeypatch.setenv("KLING_SECRET_KEY", "wrong" * 10 if broken == "AK/SK pair" else SK)
    monkeypatch.setenv("KLING_API_KEY", "wrong" if broken == "API key" else "api-doctor")
    code, checks = doctor()
    assert code == 1
    working = "API key" if broken == "AK/SK pair" else "AK/SK pair"
    assert checks[broken]["outcome"] == "FAIL"
    assert checks[broken]["detail"].startswith("refused by Kling")
    assert checks[working]["outcome"] == "ok"
    assert checks[working]["detail"].startswith(f"accepted by {sandbox}")


def test_half_an_ak_sk_pair_is_named(
    sandbox: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_API_BASE", sandbox)
    monkeypatch.setenv("KLING_ACCESS_KEY", AK)
    monkeypatch.setenv("KLING_API_KEY", "api-doctor")
    code, checks = doctor()
    assert code == 1
    assert checks["AK/SK pair"] == {
        "name": "AK/SK pair",
        "outcome": "FAIL",
        "detail": "half a pair: KLING_SECRET_KEY is not set",
    }
    assert checks["API key"]["outcome"] == "ok"


def test_missing_credentials_name_the_variables(workdir: Path) -> None:
    code, checks = doctor()
    assert code == 1
    detail = checks["credentials"]["detail"]
    assert "KLING_ACCESS_KEY" in detail
    assert "KLING_SECRET_KEY" in detail
    assert "KLING_API_KEY" in detail


def test_an_unreachable_server_is_named(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_API_BASE", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("KLING_API_KEY", "some-key")
    code, checks = doctor("--timeout", "2")
    assert code == 1
    assert "cannot reach http://127.0.0.1:9" in checks["API key"]["detail"]


def test_the_timeout_bounds_every_check(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A server that takes the connection and never answers: without a bound, retries and
    # backoff kept doctor waiting 15 s for a 1 s --timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("KLING_API_BASE", url)
        monkeypatch.setenv("KLING_ACCESS_KEY", AK)
        monkeypatch.setenv("KLING_SECRET_KEY", SK)
        monkeypatch.setenv("KLING_API_KEY", "api-doctor")
        monkeypatch.setenv("KLINGWATCH_PUBLIC_URL", url)
        start = time.monotonic()
        code, checks = doctor("--timeout", "0.5")
        took = time.monotonic() - start
    assert code == 1
    for name in ("AK/SK pair", "API key"):
        assert checks[name]["detail"] == f"no answer from {url} within 0.5 s (--timeout)"
    assert checks["callbacks"]["detail"] == f"no answer from {url}/healthz within 0.5 s (--timeout)"
    assert took < 3.0  # three checks of at most 0.5 s each, and the rest


async def test_a_clock_two_minutes_ahead_fails_the_clock_check(sandbox: str) -> None:
    settings = Settings.load(api_base=sandbox, access_key=AK, secret_key=SK, db="sqlite://")
    checks = {c.name: c for c in await run_checks(settings, clock=ManualClock(time.time() + 120))}
    assert checks["clock"].outcome == "FAIL"
    assert "ahead of Kling" in checks["clock"].detail
    assert "sync the clock" in checks["clock"].detail


@pytest.mark.parametrize("offset", [0.0, 0.6, -0.6, 0.95, -0.95])
async def test_a_skew_the_date_header_cannot_show_is_not_reported(
    sandbox: str, offset: float
) -> None:
    settings = Settings.load(api_base=sandbox, access_key=AK, secret_key=SK, db="sqlite://")
    clock = ManualClock(time.time() + offset)
    checks = {c.name: c for c in await run_checks(settings, clock=clock)}
    assert checks["clock"] == Check(
        "clock", "ok", "in step with Kling, as far as its Date header (whole seconds) tells"
    )


def test_clock_check_reads_the_date_headers() -> None:
    date = "Sat, 28 Nov 2026 12:00:00 GMT"  # 1795867200
    behind = clock_check([Answer(1795867197.0, 1795867197.1, date)])
    assert behind == Check("clock", "ok", "this machine is 2.9 s behind Kling")
    # Kling's clock read 12:00:00.000-12:00:01.999 (whole seconds, refreshed once a second).
    assert clock_check([Answer(1795867203.5, 1795867203.6, date)]).detail == (
        "this machine is 1.5 s ahead of Kling"
    )
    for surely_ahead_by_less_than_a_second in (1795867201.5, 1795867202.5):
        answer = Answer(
            surely_ahead_by_less_than_a_second, surely_ahead_by_less_than_a_second, date
        )
        assert clock_check([answer]).detail.startswith("in step")
    assert clock_check([]).outcome == "skip"
    assert clock_check([Answer(0.0, 0.1, "not a date")]).outcome == "skip"


def test_an_existing_ledger_is_opened_and_counted(workdir: Path) -> None:
    db = f"sqlite:///{workdir / 'ledger.db'}"
    Ledger.open(db).close()
    _, checks = doctor("--db", db)
    assert checks["ledger"]["outcome"] == "ok"
    assert "reachable and migrated, 0 tasks" in checks["ledger"]["detail"]


def test_a_ledger_in_a_missing_folder_fails(workdir: Path) -> None:
    code, checks = doctor("--db", f"sqlite:///{workdir / 'nope' / 'ledger.db'}")
    assert code == 1
    assert checks["ledger"]["outcome"] == "FAIL"
    assert "does not exist" in checks["ledger"]["detail"]


def test_callback_url_reachable_and_not(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    healthz = Starlette(routes=[Route("/healthz", lambda request: PlainTextResponse("ok"))])
    with serve_in_thread(app=healthz) as url:
        monkeypatch.setenv("KLINGWATCH_PUBLIC_URL", url)
        _, checks = doctor()
        assert checks["callbacks"]["outcome"] == "ok"
    monkeypatch.setenv("KLINGWATCH_PUBLIC_URL", "http://127.0.0.1:9")
    code, checks = doctor("--timeout", "2")
    assert code == 1
    assert checks["callbacks"]["outcome"] == "FAIL"
    assert "is `klingwatch serve` running there" in checks["callbacks"]["detail"]
