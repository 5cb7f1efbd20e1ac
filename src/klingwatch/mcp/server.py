"""The MCP server: :func:`build_server` registers the tools and resources of
:mod:`klingwatch.mcp.tools` on the SDK's ``MCPServer``; :func:`http_app` puts it behind the web
server's guard for streamable HTTP.

Over HTTP the same rules hold as for ``klingwatch serve`` (:mod:`klingwatch.server.guard`): only
requests naming a known host are answered (DNS rebinding), writes from another origin are
refused, and with ``KLINGWATCH_API_TOKEN`` set every request must carry it as a bearer token (it
must be set to listen beyond loopback).
"""

from __future__ import annotations

import json
import logging

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from klingwatch import __version__
from klingwatch.mcp.tools import Tools
from klingwatch.operations import Operations
from klingwatch.server.auth import token_matches
from klingwatch.server.guard import HostPolicy, RequestGuard

__all__ = ["MCP_PATH", "SERVER_NAME", "build_server", "http_app"]

logger = logging.getLogger(__name__)

SERVER_NAME = "klingwatch"
#: Where the streamable HTTP endpoint listens.
MCP_PATH = "/mcp"

INSTRUCTIONS = """\
klingwatch tracks Kling AI generation tasks in a ledger. Read with status, list_tasks (paged:
pass next_offset), show_task (a task's timeline), stuck and spend. submit and retry_failed are dry
runs by default: they validate and estimate units and send nothing; a real send needs
dry_run=false AND confirm=true, so ask the user before confirming (it spends money). Tasks are
named by their external_task_id; wait_for waits (bounded) until they are final. Resources:
klingwatch://batches/{name}/report and klingwatch://tasks/{name}/timeline.
"""

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_SPEND = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)


def build_server(ops: Operations) -> MCPServer:
    """An MCP server whose tools and resources work on ``ops`` (kept open by the caller)."""
    tools = Tools(ops)
    server: MCPServer = MCPServer(
        SERVER_NAME,
        title="klingwatch",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    for fn in (tools.status, tools.list_tasks, tools.show_task, tools.stuck, tools.spend):
        server.add_tool(fn, annotations=_READ)
    server.add_tool(tools.submit, annotations=_SPEND)
    server.add_tool(tools.retry_failed, annotations=_SPEND)
    # wait_for reads, and may poll Kling; it never sends anything that was not queued already.
    server.add_tool(tools.wait_for, annotations=ToolAnnotations(read_only_hint=True))
    server.resource(
        "klingwatch://batches/{name}/report",
        name="batch-report",
        description="A batch's status with its failed and stuck tasks and their reasons.",
        mime_type="application/json",
    )(tools.batch_report)
    server.resource(
        "klingwatch://tasks/{name}/timeline",
        name="task-timeline",
        description="One task (by external id, local id or Kling id) with its timeline.",
        mime_type="application/json",
    )(tools.task_timeline)
    return server


def http_app(
    server: MCPServer,
    *,
    bind_host: str,
    allowed_hosts: list[str] | None = None,
    api_token: str | None = None,
) -> ASGIApp:
    """The streamable HTTP app at :data:`MCP_PATH`, behind :class:`RequestGuard` (Host and
    Origin rules of :mod:`klingwatch.server.guard`) and, with ``api_token``, a bearer check."""
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        # The guard below applies klingwatch's own rules (the same as `serve`'s) instead.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=bind_host,
    )
    if api_token:
        app = _BearerToken(app, api_token)
    policy = HostPolicy.build(bind_host=bind_host, extra=allowed_hosts or ())
    return RequestGuard(app, policy=policy, api_prefix=MCP_PATH)


class _BearerToken:
    """Refuse (401) every HTTP request that does not carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token_matches(given.strip(), self.token):
                body = json.dumps({"detail": "send KLINGWATCH_API_TOKEN as a bearer token"})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)
