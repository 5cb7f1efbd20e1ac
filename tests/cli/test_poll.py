"""``klingwatch poll`` against a tiny Kling served by uvicorn on a real loopback socket.

Time is scaled (KLINGWATCH_TIME_SCALE=0.01): the server's tasks take fractions of a second, and
the command's nominal cadence and deadline shrink with them.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.cli.options import parse_duration
from klingwatch.clock import format_duration

API_KEY = "kapi-cli-test-SECRET"


@dataclass
class Script:
    """A task's answers, one per look (the last repeats), so a test never races the clock."""

    statuses: tuple[str, ...] = ("submitted", "processing", "succeed")
    fail: str | None = None
    looks: int = 0


@dataclass
class TinyKling:
    tasks: dict[str, Script] = field(default_factory=dict)
    hits: int = 0

    def app(self) -> Starlette:
        async def one(request: Request) -> JSONResponse:
            self.hits += 1
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
                return _error(401, 1002, "Authorization is invalid")
            task_id = request.path_params["task_id"]
            script = self.tasks.get(task_id)
            if script is None:
                return _error(400, 1201, "Task not found by id/external id")
            status = script.statuses[min(script.looks, len(script.statuses) - 1)]
            script.looks += 1
            result: dict[str, object] = {}
            msg = script.fail or "" if status == "failed" else ""
            if status == "succeed":
                result = {"videos": [{"id": "v", "url": f"https://cdn/{task_id}.mp4"}]}
            data = {
                "task_id": task_id,
                "task_status": status,
                "task_status_msg": msg,
                "task_info": {},
                "task_result": result,
                "created_at": int(time.time() * 1000),
                "updated_at": int(time.time() * 1000),
            }
            body = {"code": 0, "message": "SUCCEED", "request_id": "r", "data": data}
            return JSONResponse(body)

        return Starlette(routes=[Route("/v1/videos/text2video/{task_id}", one)])


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "request_id": "r"}, status_code=status)


@pytest.fixture
def kling() -> Iterator[tuple[TinyKling, str]]:
    fake = TinyKling()
    config = uvicorn.Config(
        fake.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):  # readiness, not timing: wait for the socket to be bound
        if server.started:
            break
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env / klingwatch.toml
    monkeypatch.setenv("KLING_API_KEY", API_KEY)
    monkeypatch.setenv("KLINGWATCH_TIME_SCALE", "0.01")
    return monkeypatch


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["poll", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_poll_prints_each_change_then_the_urls_and_exits_0(
    kling: tuple[TinyKling, str], env: pytest.MonkeyPatch
) -> None:
    fake, url = kling
    fake.tasks["111"] = Script()
    env.setenv("KLING_API_BASE", url)

    code, out, err = run("111", "--product", "text2video")

    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[-1] for line in lines[:3]] == ["submitted", "processing", "succeed"]
    assert all(re.fullmatch(r"\+(\d+h)?(\d+m)?\d+s", line.split()[0]) for line in lines[:3])
    assert lines[3:] == ["https://cdn/111.mp4"]


def test_poll_json_prints_one_object_per_change_then_the_task(
    kling: tuple[TinyKling, str], env: pytest.MonkeyPatch
) -> None:
    fake, url = kling
    fake.tasks["222"] = Script()
    env.setenv("KLING_API_BASE", url)

    code, out, _ = run("222", "--json")

    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o.get("status") for o in objects[:3]] == ["submitted", "processing", "succeed"]
    elapsed = [o["elapsed"] for o in objects[:3]]
    assert elapsed == sorted(elapsed)
    final = objects[-1]
    assert (final["id"], final["status"]) == ("222", "succeed")
    assert final["result_urls"] == ["https://cdn/222.mp4"]


def test_poll_by_external_id_looks_the_task_up_first(
    kling: tuple[TinyKling, str], env: pytest.MonkeyPatch
) -> None:
    fake, url = kling
    fake.tasks["batch-7"] = Script(("processing", "processing", "succeed"))
    env.setenv("KLING_API_BASE", url)

    code, out, _ = run("batch-7", "--external")

    assert code == 0
    assert out.splitlines()[-1] == "https://cdn/batch-7.mp4"


def test_a_failed_task_exits_1_with_the_reason(
    kling: tuple[TinyKling, str], env: pytest.MonkeyPatch
) -> None:
    fake, url = kling
    fake.tasks["333"] = Script(("processing", "failed"), fail="Image pixel is invalid")
    env.setenv("KLING_API_BASE", url)

    code, out, err = run("333")

    assert code == 1
    assert "failed" in out
    assert "Image pixel is invalid" in err


def test_the_deadline_exits_4(kling: tuple[TinyKling, str], env: pytest.MonkeyPatch) -> None:
    fake, url = kling
    fake.tasks["444"] = Script(("processing",))
    env.setenv("KLING_API_BASE", url)

    code, out, err = run("444", "--deadline", "30s")  # 0.3 s at this time scale

    assert code == 4
    assert out.split()[-1] == "processing"
    assert "still processing" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "env_changes", "expect"),
    [
        (["1", "--product", "text2vdeo"], {}, "unknown product"),
        (["404"], {}, "no task with that id"),
        (["1"], {"KLING_API_KEY": "wrong"}, "KLING_API_KEY"),
        (["1"], {"KLING_API_KEY": None}, "KLING_ACCESS_KEY"),
        (["1"], {"KLING_API_BASE": "closed-port"}, "cannot connect"),
    ],
    ids=["unknown-product", "unknown-task", "bad-key", "no-key", "unreachable"],
)
def test_errors_are_one_clear_line_and_exit_3(
    kling: tuple[TinyKling, str],
    env: pytest.MonkeyPatch,
    args: list[str],
    env_changes: dict[str, str | None],
    expect: str,
) -> None:
    _, url = kling
    env.setenv("KLING_API_BASE", url)
    for name, value in env_changes.items():
        if value == "closed-port":
            value = f"http://127.0.0.1:{_closed_port()}"
        if value is None:
            env.delenv(name)
        else:
            env.setenv(name, value)

    code, out, err = run(*args)

    assert code == 3
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    assert expect in err
    assert API_KEY not in err


def test_a_bad_deadline_is_a_usage_error_exit_2(env: pytest.MonkeyPatch) -> None:
    code, out, err = run("1", "--deadline", "abc")

    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "error: Invalid value for '--deadline' / '-d': 'abc' is not a duration: expected a "
        "duration such as 90s, 30m, 2h or 1h30m (a bare number is seconds) "
        "(see klingwatch poll --help)"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1h30m", 5400),
        ("45", 45),
        ("1.5h", 5400),
        ("1d2h", 93600),
        (" 2M ", 120),
        ("250ms", 0.25),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "m", "30m1h", "1h1h", "-5", "1h 30", "nan"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="90s, 30m"):
        parse_duration(text)


def test_elapsed_times_format_compactly() -> None:
    assert [format_duration(s, precise=True) for s in (0, 3.2, 75, 3725)] == [
        "0s",
        "3s",
        "1m15s",
        "1h02m05s",
    ]
