"""The command line's one client factory: every knob from the settings, passed explicitly."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from klingwatch.cli.common import load_settings, make_client
from klingwatch.kling.models import TaskStatus
from klingwatch.sandbox import SandboxConfig, create_app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_a_cli_client_takes_credentials_base_clock_and_budget_from_the_settings(
    workdir: Path,
) -> None:
    # Everything in .env and klingwatch.toml: files the library client never reads itself.
    (workdir / ".env").write_text(
        "KLING_API_KEY=key-from-dotenv\nKLINGWATCH_TIME_SCALE=0.5\n"
        "KLINGWATCH_REQUESTS_PER_SECOND=2.5\nKLINGWATCH_MAX_CONCURRENCY=3\n"
    )
    (workdir / "klingwatch.toml").write_text('api_base = "http://kling.test"\n')
    sandbox = create_app(SandboxConfig(api_keys=("key-from-dotenv",), time_scale=0.01))
    settings = load_settings()
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox)) as http,
        make_client(settings, http_client=http) as kling,
    ):
        assert kling.base_url == "http://kling.test"
        assert kling.clock.scale == 0.5
        assert (kling.budget.bucket.rate, kling.budget.concurrency) == (2.5, 3)
        created = await kling.create("text2video", {"prompt": "a fox"}, external_task_id="c-1")
        seen = await kling.get("text2video", created.id)
    assert seen.status in (TaskStatus.SUBMITTED, TaskStatus.PROCESSING, TaskStatus.SUCCEED)
    assert seen.external_id == "c-1"
