"""The web app: callbacks, JSON API, dashboard, ``/metrics`` and ``/healthz`` in one FastAPI.

:func:`create_app` wires them to one :class:`~klingwatch.operations.Operations` (the async ledger,
the Kling client, the clock): every route reads and writes the ledger through its one async
boundary, so a database slow to give a lock never stops the event loop (``/healthz`` and
callbacks keep answering). With a ``monitor`` the app also runs the engine for
its lifetime (started with the app, stopped before the ledger is let go), which is how
``klingwatch serve`` keeps everything in one process. Every request first passes the
:class:`~klingwatch.server.guard.RequestGuard` (known Host, same-origin JSON writes). ``/docs``
(Swagger UI) loads its script and styles from ``/static/docs``, shipped by the
``fastapi-offline`` package, so it works without a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from klingwatch import __version__
from klingwatch.kling.webhooks import sign
from klingwatch.monitor.service import Monitor
from klingwatch.operations import Operations
from klingwatch.server.api import router as api_router
from klingwatch.server.batch_page import router as batch_router
from klingwatch.server.callbacks import CallbackOutcome, CallbackReceiver
from klingwatch.server.callbacks import router as callback_router
from klingwatch.server.dashboard import router as dashboard_router
from klingwatch.server.dashboard import static_files
from klingwatch.server.deps import validation_error
from klingwatch.server.guard import HostPolicy, RequestGuard
from klingwatch.server.media import router as media_router
from klingwatch.server.metrics import Metrics
from klingwatch.server.overview import OverviewCache
from klingwatch.server.state import AppState
from klingwatch.store import LedgerError

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    ops: Operations,
    *,
    monitor: Monitor | None = None,
    stream_interval: float = 1.0,
    bind_host: str | None = None,
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """The app for ``ops`` (its settings, async ledger, clock and Kling client).

    The client confirms unsigned final callbacks (none: the poller is asked to look instead);
    ``monitor`` is run for the app's lifetime when given. ``bind_host`` (the address uvicorn
    binds) and ``allowed_hosts`` join loopback and the public URL's host in the names a
    request's ``Host`` may give (:class:`HostPolicy`).
    """
    settings, ledger, clock, client = ops.settings, ops.ledger, ops.clock, ops.client
    overview = OverviewCache(ledger, clock, warn_days=settings.expiry_warn_days)
    metrics = Metrics(
        ledger, overview, client_stats=lambda: client.stats if client is not None else None
    )

    def count(outcome: CallbackOutcome) -> None:
        metrics.count_callback(outcome.value)

    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    if secret is not None:
        sign(secret, "startup-check", 0, b"")  # a malformed secret fails here, not per delivery
    receiver = CallbackReceiver(
        ledger=ledger,
        clock=clock,
        token=ops.callback_token,
        webhook_secret=secret,
        trust_unsigned=settings.trust_unsigned_callbacks,
        client=client,
        count=count,
        heard=(lambda: _heard(monitor)) if monitor is not None else lambda: None,
    )
    state = AppState(
        ops=ops,
        callbacks=receiver,
        overview=overview,
        metrics=metrics,
        monitor=monitor,
        stream_interval=stream_interval,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if monitor is not None:
            state.engine = asyncio.create_task(monitor.run(), name="klingwatch-engine")
            state.engine.add_done_callback(_engine_ended)
        try:
            yield
        finally:
            state.stopping.set()
            await receiver.aclose()
            if monitor is not None and state.engine is not None:
                await _stop_engine(monitor, state.engine)

    app = FastAPIOffline(
        title="klingwatch",
        version=__version__,
        description="Where every Kling task stands: callbacks, tasks, batches, stats.",
        lifespan=lifespan,
        static_url="/static/docs",
        # No ReDoc: its page always fetches its maker's logo from a CDN. And no online
        # validator badge in Swagger UI.
        redoc_url=None,
        swagger_ui_parameters={"validatorUrl": None},
        favicon_url="/static/favicon.svg",
    )
    app.state.klingwatch = state
    policy = HostPolicy.build(
        bind_host=bind_host, public_url=settings.public_url, extra=allowed_hosts
    )
    app.add_middleware(RequestGuard, policy=policy)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.include_router(callback_router)
    app.include_router(api_router)
    app.include_router(batch_router)
    app.include_router(media_router)
    app.include_router(dashboard_router)
    app.mount("/static", static_files(), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """200 while the ledger answers and the engine (if any) runs; 503 saying what is wrong."""
        body: dict[str, Any] = {"status": "ok", "version": __version__, "engine": "none"}
        try:
            await ledger.get_meta(HEALTH_PROBE)  # a read: never behind another's write lock
        except LedgerError as exc:
            body.update(status="ledger unavailable", error=str(exc))
        if state.engine is not None:
            body["engine"] = "running"
            if state.engine.done() and not state.stopping.is_set():
                failure = None if state.engine.cancelled() else state.engine.exception()
                body.update(status="engine stopped", engine="stopped", error=repr(failure))
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        await metrics.prepare()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


#: A meta key nobody writes: reading it proves the ledger answers.
HEALTH_PROBE = "server.healthz"


def _heard(monitor: Monitor) -> None:
    """A callback arrived: polling is the safety net for now, and the engine wakes, for the
    delivery may have freed a slot the submitter can fill at once."""
    monitor.poller.heard_callback()
    monitor.wake()


def _engine_ended(task: asyncio.Task[None]) -> None:
    # Said at once, not at shutdown: the dashboard keeps serving, /healthz turns 503.
    if not task.cancelled() and task.exception() is not None:
        logger.error("the engine stopped with an error", exc_info=task.exception())


async def _stop_engine(monitor: Monitor, engine: asyncio.Task[None]) -> None:
    """Ask the engine to finish its iteration; cancel it if it does not within 10 s."""
    monitor.stop()
    with contextlib.suppress(asyncio.TimeoutError, Exception):
        await asyncio.wait_for(asyncio.shield(engine), timeout=10.0)
    if not engine.done():
        engine.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await engine
