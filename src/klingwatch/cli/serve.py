"""``klingwatch serve``: the engine and the web face (callbacks, API, dashboard, metrics) in one
process, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import socket
from typing import Any

import typer
import uvicorn

from klingwatch.cli.app import app
from klingwatch.cli.common import DB_OPTION, load_settings
from klingwatch.cli.common import run_async as _run
from klingwatch.cli.listen import listening_socket
from klingwatch.monitor.download_worker import DownloadWorker
from klingwatch.operations import Operations
from klingwatch.server.app import create_app
from klingwatch.server.auth import check_bind
from klingwatch.server.runner import AppServer
from klingwatch.settings import Settings

__all__ = ["serve_command"]

logger = logging.getLogger(__name__)

#: Seconds uvicorn waits for open connections before closing them.
GRACEFUL_SECONDS = 5


async def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    allowed_hosts: list[str] | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Run the engine and the app until uvicorn is told to stop (SIGINT/SIGTERM).

    ``sock`` is the listening socket (:func:`~klingwatch.cli.listen.listening_socket`); without
    it uvicorn binds ``host:port`` itself.
    """
    if sock is not None:
        port = int(sock.getsockname()[1])
    async with Operations.open(settings) as ops:
        url = await ops.callback_url()
        monitor = ops.engine(callback_url=url) if ops.client is not None else None
        web = create_app(ops, monitor=monitor, bind_host=host, allowed_hosts=allowed_hosts or ())
        where = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        typer.echo(f"klingwatch: dashboard {where}/  API {where}/docs  metrics {where}/metrics")
        if monitor is None:
            typer.echo(
                "klingwatch: no Kling credentials (KLING_ACCESS_KEY/KLING_SECRET_KEY or "
                "KLING_API_KEY): showing the ledger only, nothing is polled or sent",
                err=True,
            )
        if url:
            logger.info("tasks sent from here carry a callback URL on %s", settings.public_url)
            typer.echo(f"klingwatch: tasks sent from here get callbacks at {url}")
        else:
            path = f"/callbacks/kling/{await ops.callback_token()}"
            typer.echo(
                f"klingwatch: callbacks are taken at {where}{path} (--public-url to send it)"
            )
        config = uvicorn.Config(
            web,
            host=host,
            port=port,
            log_level=log_level,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )
        try:
            await AppServer(config, web).serve(sockets=None if sock is None else [sock])
        finally:
            if monitor is not None:
                await DownloadWorker.close_all(monitor.workers)
    typer.echo("klingwatch: stopped")


HOST_OPTION: Any = typer.Option(
    "127.0.0.1",
    "--host",
    help="Address to bind (anything but loopback needs KLINGWATCH_API_TOKEN).",
)
PORT_OPTION: Any = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on.")
PUBLIC_URL_OPTION: Any = typer.Option(
    None,
    "--public-url",
    help="Where Kling can reach this server; tasks sent from here then get a callback_url.",
)
LOG_OPTION: Any = typer.Option("info", "--log-level", help="uvicorn's log level.")
ALLOW_HOST_OPTION: Any = typer.Option(
    None,
    "--allow-host",
    help="Also answer requests for this host name (repeatable); loopback, the bind address and "
    "--public-url's host always are. Other names are refused (DNS rebinding).",
)


@app.command("serve")
def serve_command(
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    public_url: str | None = PUBLIC_URL_OPTION,
    db: str | None = DB_OPTION,
    log_level: str = LOG_OPTION,
    allow_host: list[str] | None = ALLOW_HOST_OPTION,
) -> None:
    """Run the engine, the callback receiver, the JSON API, the dashboard and /metrics."""
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise typer.BadParameter("must start with http:// or https://", param_hint="--public-url")
    settings = load_settings(db, public_url=public_url)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    check_bind(host, token)
    # Bound before anything is printed: a port in use is one line, not a page of uvicorn log.
    with listening_socket(host, port) as sock:
        _run(
            serve(
                settings,
                host=host,
                port=port,
                log_level=log_level,
                allowed_hosts=allow_host,
                sock=sock,
            )
        )
