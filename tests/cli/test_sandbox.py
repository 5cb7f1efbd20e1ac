"""``klingwatch sandbox``: options, one-line errors, and a real run with demo keys."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.cli.sandbox import parse_settings, parse_slots
from klingwatch.kling.products import Family


def test_set_takes_any_config_field() -> None:
    assert parse_settings(["callback_drop_rate=0.1", "list-order=oldest", 'api_keys=["a"]']) == {
        "callback_drop_rate": 0.1,
        "list_order": "oldest",
        "api_keys": ["a"],
    }


def test_slots_parse_per_family() -> None:
    assert parse_slots("video=3, try-on=1") == {Family.VIDEO: 3, Family.TRY_ON: 1}
    assert parse_slots(None) == {}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--chaos", "5000"], "kind:value"),
        (["--slots", "audio=2"], "family=count"),
        (["--webhook-secret", "plain"], "whsec_"),
        (["--access-key", "ak-only"], "--secret-key"),
        (["--set", "no_such=1"], "name=value"),
        (["--set", "callback_drop_rate=2"], "callback_drop_rate"),
    ],
)
def test_bad_options_get_one_clear_line(args: list[str], words: str) -> None:
    result = CliRunner().invoke(app, ["sandbox", *args])
    assert result.exit_code == 2
    assert words in result.output
    assert "Traceback" not in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_without_keys_it_prints_a_demo_pair_that_works() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "KLINGWATCH_"))}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from klingwatch.cli import main; main()",
            "sandbox",
            "--port",
            str(port),
            "--time-scale",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        exports: dict[str, str] = {}
        for line in proc.stdout:
            match = re.match(r"\s*export (KLING_\w+)=(\S+)", line)
            if match:
                exports[match[1]] = match[2]
            if "KLING_API_BASE" in exports:
                break
        base = exports["KLING_API_BASE"]
        assert base == f"http://127.0.0.1:{port}"
        for _ in range(300):  # the server comes up after the banner
            try:
                httpx.get(f"{base}/sandbox/stats", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        api = httpx.get(
            f"{base}/tasks",
            params={"task_ids": "1"},
            headers={"Authorization": f"Bearer {exports['KLING_API_KEY']}"},
        )
        now = int(time.time())
        token = jwt.encode(
            {"iss": exports["KLING_ACCESS_KEY"], "exp": now + 1800, "nbf": now - 5},
            exports["KLING_SECRET_KEY"],
            algorithm="HS256",
        )
        legacy = httpx.post(
            f"{base}/v1/videos/text2video",
            json={"prompt": "x"},
            headers={"Authorization": f"Bearer {token}"},
        )
        refused = httpx.get(f"{base}/v1/videos/text2video")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()
    assert (api.status_code, api.json()["data"]) == (200, [])
    assert legacy.json()["code"] == 0
    assert refused.json()["code"] == 1001
