"""``klingwatch mcp``: the Model Context Protocol server for agents (:mod:`klingwatch.mcp`),
on stdio (what agent clients spawn) or, with ``--http``, streamable HTTP on loopback."""

from __future__ import annotations

import socket
from typing import Any

import typer
import uvicorn

from klingwatch.cli.app import app
from klingwatch.cli.common import DB_OPTION, load_settings, run_async
from klingwatch.cli.listen import listening_socket
from klingwatch.operations import Operations
from klingwatch.server.auth import check_bind
from klingwatch.server.runner import AppServer
from klingwatch.settings import Settings

__all__ = ["mcp_command"]


async def serve_mcp(
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    allowed_hosts: list[str] | None = None,
) -> None:
    """Serve MCP on stdio, or on ``sock`` (streamable HTTP) when given, until the client goes
    away (stdio) or SIGINT/SIGTERM (HTTP)."""
    # The SDK loads slowly; the other commands should not pay for it.
    from klingwatch.mcp import build_server
    from klingwatch.mcp.server import MCP_PATH, http_app

    async with Operations.open(settings) as ops:
        server = build_server(ops)
        if sock is None:
            await server.run_stdio_async()
            return
        token = settings.api_token.get_secret_value() if settings.api_token else None
        web = http_app(server, bind_host=host, allowed_hosts=allowed_hosts, api_token=token)
        port = int(sock.getsockname()[1])
        where = f"http://{'[' + host + ']' if ':' in host else host}:{port}{MCP_PATH}"
        typer.echo(f"klingwatch: MCP (streamable HTTP) at {where}", err=True)
        config = uvicorn.Config(web, log_level="warning", lifespan="on")
        # AppServer: a signal means "stop cleanly" (the ledger is closed), not "die".
        await AppServer(config).serve(sockets=[sock])


HTTP_OPTION: Any = typer.Option(
    False, "--http", help="Serve streamable HTTP (at /mcp) instead of stdio."
)
HOST_OPTION: Any = typer.Option(
    "127.0.0.1",
    "--host",
    help="With --http: address to bind (anything but loopback needs KLINGWATCH_API_TOKEN).",
)
PORT_OPTION: Any = typer.Option(
    8765, "--port", min=0, max=65535, help="With --http: port to listen on."
)
ALLOW_HOST_OPTION: Any = typer.Option(
    None,
    "--allow-host",
    help="With --http: also answer requests for this host name (repeatable).",
)


@app.command("mcp")
def mcp_command(
    http: bool = HTTP_OPTION,
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    allow_host: list[str] | None = ALLOW_HOST_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """Run the MCP server for agents: tools over the ledger (status, tasks, timelines, spend,
    submit, retry, wait) and resources (batch reports, task timelines).

    stdio by default, which is what agent clients (Claude Desktop, Claude Code, Cursor) start;
    see docs/mcp.md. submit and retry_failed send nothing unless called with dry_run=false and
    confirm=true.
    """
    settings = load_settings(db)
    if not http:
        run_async(serve_mcp(settings))
        return
    token = settings.api_token.get_secret_value() if settings.api_token else None
    check_bind(host, token)
    with listening_socket(host, port) as sock:
        run_async(serve_mcp(settings, sock=sock, host=host, allowed_hosts=allow_host))
