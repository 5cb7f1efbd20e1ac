"""``create_app``: the sandbox as one ASGI application.

>>> app = create_app(SandboxConfig(api_keys=("sk-test",)), clock=ManualClock())
>>> transport = SandboxTransport(app)                  # in-process, for tests
>>> app.state.sandbox.state.tasks                      # direct access to the account
>>> app.state.sandbox.script.on_create("x", "timeout")  # a scripted answer

Route order matters: ground truth and media under ``/sandbox/``, the legacy ``/v1/...`` routes,
then ``/tasks`` and the catch-all new-standard create route ``/{product}/{model}``. Anything else
answers Kling's 404/1202 envelope. Around them, outermost first: the ground-truth recorder, the
delivery layer (``Date`` headers, answers withheld on purpose), chaos.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from klingwatch.clock import Clock, ManualClock, RealClock, ScaledClock
from klingwatch.kling.models import ApiStandard
from klingwatch.kling.products import PRODUCTS
from klingwatch.sandbox.callbacks import CallbackDeliverer
from klingwatch.sandbox.chaos import ChaosEngine, ChaosMiddleware
from klingwatch.sandbox.config import SandboxConfig
from klingwatch.sandbox.delivery import DeliveryMiddleware
from klingwatch.sandbox.media import media_routes
from klingwatch.sandbox.routes_tasks import tasks_routes
from klingwatch.sandbox.routes_v1 import legacy_routes
from klingwatch.sandbox.runtime import Sandbox, error_response
from klingwatch.sandbox.script import Script
from klingwatch.sandbox.state import SandboxError, SandboxState
from klingwatch.sandbox.truth import RequestRecorder, truth_routes

__all__ = ["create_app", "is_create_path"]

logger = logging.getLogger(__name__)

_LEGACY_PATHS = frozenset(p.path for p in PRODUCTS.values() if p.standard is ApiStandard.LEGACY)
_TASKS_KINDS = frozenset(
    p.name.partition("/")[0] for p in PRODUCTS.values() if p.standard is ApiStandard.TASKS
)


def is_create_path(path: str) -> bool:
    """Whether a POST to ``path`` creates a task (in either standard)."""
    if path in _LEGACY_PATHS:
        return True
    parts = path.strip("/").split("/")
    return len(parts) == 2 and parts[0] in _TASKS_KINDS


async def _unknown_route(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/sandbox/"):
        return Response(b"not found", status_code=exc.status_code, media_type="text/plain")
    return error_response(
        SandboxError(1202, f"Invalid request: {request.method} {request.url.path}", status=404)
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    # A sandbox bug still answers the way Kling fails, so clients exercise their 5000 path.
    logger.exception("sandbox error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(SandboxError(5000, "Server internal error"))


def create_app(
    config: SandboxConfig | None = None,
    *,
    clock: Clock | None = None,
    callback_transport: httpx.AsyncBaseTransport | None = None,
    deliver_callbacks: bool | None = None,
) -> Starlette:
    """The sandbox ASGI app; ``app.state.sandbox`` is its :class:`Sandbox`.

    ``clock`` defaults to a :class:`ScaledClock` of ``config.time_scale`` (the wall clock when
    1.0); the sandbox runs ``config.clock_offset`` seconds ahead of it. ``callback_transport``
    replaces the network for callbacks (e.g. an ``httpx.ASGITransport`` into a receiver app).
    ``deliver_callbacks`` runs the delivery loop in the app's lifespan; by default on, except on
    a :class:`ManualClock`, where tests call ``app.state.sandbox.callbacks.deliver_due()`` after
    moving the clock.
    """
    config = config or SandboxConfig()
    if clock is None:
        clock = RealClock() if config.time_scale == 1.0 else ScaledClock(config.time_scale)
    if deliver_callbacks is None:
        deliver_callbacks = not isinstance(clock, ManualClock)
    if config.clock_offset:
        clock = _OffsetClock(clock, config.clock_offset)
    state = SandboxState(config, clock)
    chaos = ChaosEngine(config.chaos, clock=clock, seed=config.seed)
    sandbox = Sandbox(
        config=config,
        clock=clock,
        state=state,
        callbacks=CallbackDeliverer(state, transport=callback_transport),
        chaos=chaos,
        script=Script(config.script),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runner = asyncio.create_task(sandbox.callbacks.run()) if deliver_callbacks else None
        try:
            yield
        finally:
            if runner is not None:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
            await sandbox.callbacks.aclose()

    routes: list[BaseRoute] = [*truth_routes(), *media_routes(), *legacy_routes(), *tasks_routes()]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestRecorder, sandbox=sandbox, routes=routes),
            Middleware(DeliveryMiddleware, sandbox=sandbox),
            Middleware(ChaosMiddleware, engine=chaos, is_create=is_create_path),
        ],
        exception_handlers={404: _unknown_route, 405: _unknown_route, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return app


class _OffsetClock:
    """``clock``, ``offset`` seconds ahead: a Kling whose clock is not the caller's."""

    def __init__(self, clock: Clock, offset: float) -> None:
        self._clock = clock
        self._offset = offset

    @property
    def scale(self) -> float:
        return self._clock.scale

    def time(self) -> float:
        return self._clock.time() + self._offset

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def scaled(self, seconds: float) -> float:
        return self._clock.scaled(seconds)

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)

    def __repr__(self) -> str:
        return f"{self._clock!r} {self._offset:+g} s"
