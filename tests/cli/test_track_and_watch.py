"""``track`` and ``watch`` against a sandbox on a real socket (run 100x faster than real time)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, serve_in_thread

KEY = "cli-test-api-key"
SCALE = 0.01
CONFIG = SandboxConfig(
    api_keys=(KEY,),
    time_scale=SCALE,
    slots={Family.VIDEO: 500},
    straggler_rate=0.0,
    failure_rate=0.2,
    seed=3,
)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    with serve_in_thread(CONFIG) as url:
        monkeypatch.setenv("KLING_API_BASE", url)
        monkeypatch.setenv("KLING_API_KEY", KEY)
        monkeypatch.setenv("KLINGWATCH_TIME_SCALE", str(SCALE))
        monkeypatch.setenv("KLINGWATCH_DB", f"sqlite:///{tmp_path / 'ledger.db'}")
        monkeypatch.chdir(tmp_path)
        yield url


def create(url: str, n: int) -> list[str]:
    """Create tasks directly on the sandbox (as another tool would); their Kling ids."""
    ids = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        for i in range(n):
            body = {"prompt": f"cat {i}", "model_name": "kling-v2-6", "external_task_id": f"e{i}"}
            answer = http.post("/v1/videos/text2video", json=body).json()
            ids.append(answer["data"]["task_id"])
    return ids


def truth(url: str) -> dict[str, str]:
    tasks = httpx.get(f"{url}/sandbox/tasks").json()["tasks"]
    return {t["task_id"]: t["status"] for t in tasks}


def test_track_adopts_existing_tasks_and_refuses_unknown_ids(sandbox: str) -> None:
    [task_id] = create(sandbox, 1)
    result = CliRunner().invoke(
        app, ["track", task_id, "999999999999999999", "--product", "text2video", "-b", "mine"]
    )
    assert result.exit_code == 1
    assert re.search(
        rf"^{task_id}  (submitted|processing)  tracked in batch 'mine'$", result.stdout, re.M
    )
    assert "999999999999999999: Kling has no text2video task with this id" in result.stderr
    status = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)
    assert status["total"] == 1
    assert status["active"] == 1


def test_track_names_an_unknown_product(sandbox: str) -> None:
    result = CliRunner().invoke(app, ["track", "1", "--product", "text3video"])
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert "unknown product 'text3video'" in line


def test_watch_until_done_prints_each_change_and_ends_true(sandbox: str) -> None:
    ids = create(sandbox, 12)
    adopted = CliRunner().invoke(app, ["track", *ids, "--product", "text2video"])
    assert adopted.exit_code == 0, adopted.output
    # Tasks here take about a second: one may have ended before track read it.
    ended_early = {
        line.split()[0]
        for line in adopted.stdout.splitlines()
        if line.split()[1] in ("succeed", "failed")
    }
    result = CliRunner().invoke(app, ["watch", "--until-done"])
    assert result.exit_code == 0, result.output
    line = re.compile(r"^\d\d:\d\d:\d\d  \S+ \((\d+)\)  (submitted|processing) -> (\w+)")
    finals = {
        m[1]: m[3]
        for m in map(line.match, result.stdout.splitlines())
        if m and m[3] in ("succeed", "failed")
    }
    true = truth(sandbox)
    assert finals == {k: v for k, v in true.items() if k not in ended_early}, result.stdout
    exported = json.loads(CliRunner().invoke(app, ["export"]).stdout)
    assert {r["task_id"]: r["status"] for r in exported} == true
    assert all(r["detected_at_ms"] >= r["kling_updated_at_ms"] for r in exported)


def test_watch_names_an_unknown_batch(sandbox: str) -> None:
    result = CliRunner().invoke(app, ["watch", "--batch", "nope"])
    assert result.exit_code == 2
    assert "no batch named 'nope'" in result.output
