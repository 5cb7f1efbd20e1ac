"""uvicorn for the klingwatch app: stops cleanly, and tells open live streams at once.

uvicorn's own server waits for open connections before it lets the app shut down; the dashboard's
event streams never end by themselves, so every stop would wait the full graceful timeout. And
after a graceful stop uvicorn re-raises the signal, which would kill the process before the
ledger and the Kling client are closed. :class:`AppServer` fixes both: a stop (a signal, or
:meth:`AppServer.request_stop` from another thread) first sets the app's ``stopping`` event, which
ends every stream, and a signal means "stop cleanly", not "die".
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
from fastapi import FastAPI

__all__ = ["AppServer"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class AppServer(uvicorn.Server):
    """A uvicorn server for an app made by :func:`klingwatch.server.app.create_app` (``app``),
    or for any other app with no live streams to tell (``None``: the MCP server's)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI | None = None) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``); only once ``started``."""
        return int(self.servers[0].sockets[0].getsockname()[1])

    def request_stop(self) -> None:
        """Stop from any thread: end the live streams, then shut down gracefully."""
        self._tell_app()
        self.should_exit = True

    def _tell_app(self) -> None:
        if self._app is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._app.state.klingwatch.stopping.set)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Like uvicorn's, minus re-raising the signal after the graceful stop.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._tell_app()
        super().handle_exit(sig, frame)
