"""Running the sandbox on a real socket.

:func:`serve_in_thread` is what the demo, end-to-end tests and benchmarks use: uvicorn in a
background thread on a loopback port, yielding the base URL, stopped cleanly on exit.
:func:`serve` is the blocking form behind ``klingwatch sandbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from klingwatch.clock import Clock
from klingwatch.sandbox.app import create_app
from klingwatch.sandbox.config import SandboxConfig

__all__ = ["serve", "serve_in_thread"]

logger = logging.getLogger(__name__)


def _uvicorn_config(app: ASGIApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        # Keep connections alive across a whole benchmark run.
        timeout_keep_alive=30,
        # The sandbox stamps Date from its own clock (it may run scaled or offset).
        date_header=False,
        # A request left unanswered on purpose must not hold up stopping the server.
        timeout_graceful_shutdown=2,
    )


@contextlib.contextmanager
def serve_in_thread(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Clock | None = None,
    app: ASGIApp | None = None,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Run a sandbox on ``host:port`` (``0``: any free port) in a thread; yield its base URL.

    Pass ``app`` (from :func:`create_app`) to keep a handle on ``app.state.sandbox``; otherwise
    one is made from ``config`` and ``clock``.
    """
    if app is None:
        app = create_app(config, clock=clock)
    server = uvicorn.Server(_uvicorn_config(app, host, port, log_level))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)

    # uvicorn leaves signals alone outside the main thread; this thread owns its event loop.
    thread = threading.Thread(target=run, name="klingwatch-sandbox", daemon=True)
    thread.start()
    started = threading.Event()
    # uvicorn sets server.started once its sockets listen; poll it without touching the loop.
    for _ in range(int(startup_timeout / 0.01)):
        if server.started or failure or not thread.is_alive():
            break
        started.wait(0.01)
    if not server.started:
        server.should_exit = True
        thread.join(timeout=5)
        why = "it exited (port in use? see the uvicorn log)" if failure else "timed out"
        raise RuntimeError(f"sandbox server did not start on {host}:{port}: {why}")
    sock = server.servers[0].sockets[0]
    bound_host, bound_port = sock.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    try:
        yield f"http://{url_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # pragma: no cover - a stuck shutdown
            logger.warning("sandbox server thread did not stop within 10 s")


def serve(
    config: SandboxConfig,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    log_level: str = "info",
    sock: socket.socket | None = None,
) -> None:
    """Run a sandbox in the foreground until interrupted (``klingwatch sandbox``).

    ``sock``: a socket already listening on ``host:port``, served instead of binding anew.
    """
    app = create_app(config)
    server = uvicorn.Server(_uvicorn_config(app, host, port, log_level))
    server.run(sockets=None if sock is None else [sock])
