"""``klingwatch mcp --http``: streamable HTTP on a real loopback socket, spoken to by the SDK's own
client, behind the same Host/Origin rules as ``klingwatch serve``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, serve_in_thread

KEY = "mcp-http-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mcp_url(tmp_path: Path) -> Iterator[str]:
    with running_mcp(tmp_path) as url:
        yield url


@contextlib.contextmanager
def running_mcp(tmp_path: Path, **env: str) -> Iterator[str]:
    """``klingwatch mcp --http`` in its own process, once it listens; stopped with SIGTERM."""
    config = SandboxConfig(api_keys=(KEY,), time_scale=0.01, slots={Family.VIDEO: 10}, seed=1)
    with serve_in_thread(config) as sandbox:
        port = free_port()
        env = {
            **os.environ,
            "KLING_API_KEY": KEY,
            "KLING_API_BASE": sandbox,
            "KLINGWATCH_DB": f"sqlite:///{tmp_path / 'ledger.db'}",
            **env,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "klingwatch", "mcp", "--http", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}/mcp"
        try:
            _wait_until_listening(port, proc)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert f"MCP (streamable HTTP) at {url}" in err


def _wait_until_listening(port: int, proc: subprocess.Popen[str]) -> None:
    """Readiness of another process (not a timing assertion)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"klingwatch mcp --http exited: {proc.communicate()[1]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("klingwatch mcp --http did not listen")


async def test_the_sdk_client_lists_tools_and_calls_one_over_http(mcp_url: str) -> None:
    async with (
        streamable_http_client(mcp_url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = {t.name for t in (await session.list_tools()).tools}
        status = await session.call_tool("status", {})
        dry = await session.call_tool(
            "submit", {"product": "text2video", "batch": "web", "requests": {"prompt": "a kite"}}
        )
    assert {"submit", "wait_for", "show_task"} <= tools
    assert not status.is_error
    assert status.structured_content is not None
    assert status.structured_content["total"] == 0
    assert dry.structured_content is not None
    assert dry.structured_content["sent"] is False


def test_a_foreign_host_or_origin_is_refused(mcp_url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    rebound = httpx.post(mcp_url, json=body, headers={"Host": "evil.example"})
    cross = httpx.post(mcp_url, json=body, headers={"Origin": "http://evil.example"})
    assert rebound.status_code == 400
    assert "unknown Host header" in rebound.json()["detail"]
    assert cross.status_code == 403
    assert "cross-origin" in cross.json()["detail"]


def test_with_an_api_token_every_request_must_carry_it(tmp_path: Path) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    with running_mcp(tmp_path, KLINGWATCH_API_TOKEN="s3cret-token") as url:
        without = httpx.post(url, json=body)
        wrong = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"})
        right = httpx.post(
            url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"},
                },
            },
            headers={
                "Authorization": "Bearer s3cret-token",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert without.status_code == 401
    assert "KLINGWATCH_API_TOKEN" in without.json()["detail"]
    assert wrong.status_code == 401
    assert right.status_code == 200
