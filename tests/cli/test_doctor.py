"""`klingwatch doctor` against a sandbox on a real socket."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.cli.doctor import _clock_check, run_checks
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
    assert checks["credentials"]["outcome"] == "ok"
    assert "AK/SK pair accepted" in checks["credentials"]["detail"]
    assert checks["clock"]["outcome"] == "ok"
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
    assert checks["credentials"]["outcome"] == "FAIL"
    assert "API key refused by Kling" in checks["credentials"]["detail"]
    assert "not-a-key-this-sandbox-knows" not in json.dumps(checks)


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
    assert "cannot reach http://127.0.0.1:9" in checks["credentials"]["detail"]


async def test_a_clock_two_minutes_ahead_fails_the_clock_check(sandbox: str) -> None:
    settings = Settings.load(api_base=sandbox, access_key=AK, secret_key=SK, db="sqlite://")
    checks = {c.name: c for c in await run_checks(settings, clock=ManualClock(time.time() + 120))}
    assert checks["clock"].outcome == "FAIL"
    assert "ahead of Kling" in checks["clock"].detail
    assert "sync the clock" in checks["clock"].detail


def test_clock_check_reads_the_date_header() -> None:
    check = _clock_check(["Sat, 28 Nov 2026 12:00:00 GMT"], local=1795867200.0 - 3.0)
    assert check.outcome == "ok"
    assert "3.0 s behind Kling" in check.detail
    assert _clock_check([], local=0.0).outcome == "skip"


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
