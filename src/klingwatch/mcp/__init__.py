"""klingwatch.mcp: a Model Context Protocol server over the operations layer, for agents.

``klingwatch mcp`` runs it (stdio by default, streamable HTTP with ``--http``);
:func:`build_server` makes one over an open :class:`~klingwatch.operations.Operations`::

    async with Operations.open(settings) as ops:
        await build_server(ops).run_stdio_async()

The tools (:mod:`klingwatch.mcp.tools`) call only the operations layer; their answers are
pydantic models (:mod:`klingwatch.mcp.schemas`), so every one is structured, JSON-schema'd
content. Nothing an agent sends spends money without ``confirm: true``.
"""

from klingwatch.mcp.server import SERVER_NAME, build_server

__all__ = ["SERVER_NAME", "build_server"]
