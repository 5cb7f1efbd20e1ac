"""The running sandbox (:class:`Sandbox`) and what every Kling route shares.

``app.state.sandbox`` is a :class:`Sandbox`: config, clock, account state, callback deliverer and
chaos middleware, so tests can inspect or drive any of them directly. :func:`kling_endpoint`
wraps a route handler with what Kling does on every call: authenticate, answer errors in the
envelope, and count the answer for the ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from klingwatch.clock import Clock
from klingwatch.sandbox.auth import authenticate
from klingwatch.sandbox.chaos import CODE_KEY
from klingwatch.sandbox.config import SandboxConfig
from klingwatch.sandbox.state import SandboxError, SandboxState
from klingwatch.sandbox.wire import error_response

if TYPE_CHECKING:
    from klingwatch.sandbox.callbacks import CallbackDeliverer
    from klingwatch.sandbox.chaos import ChaosEngine

__all__ = [
    "CODE_KEY",
    "ROUTE_KEY",
    "Handler",
    "Sandbox",
    "kling_endpoint",
    "not_found",
    "read_json",
    "sandbox_of",
]

#: ASGI scope key where a Kling route leaves its name for the ground-truth recorder.
ROUTE_KEY = "klingwatch.sandbox.route"


@dataclass
class Sandbox:
    """Everything one sandbox app runs on (``app.state.sandbox``)."""

    config: SandboxConfig
    clock: Clock
    state: SandboxState
    callbacks: CallbackDeliverer
    chaos: ChaosEngine | None = None

    def reset(self) -> None:
        """Back to an empty account: tasks, counters, pending callbacks, chaos draws."""
        self.state.reset()
        self.callbacks.reset()
        if self.chaos is not None:
            self.chaos.reset()

    def base_url(self, request: Request) -> str:
        """The base of result URLs for tasks created by ``request``."""
        return self.config.public_base_url or str(request.base_url).rstrip("/")


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


Handler = Callable[[Request, Sandbox], Awaitable[Response]]


def kling_endpoint(
    route: str, handler: Handler, *, tasks_api: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: auth, the error envelope and ground-truth counting around
    ``handler``. ``route`` names the route in ``/sandbox/stats`` (``"GET /tasks"``)."""

    async def endpoint(request: Request) -> Response:
        sandbox = sandbox_of(request)
        try:
            authenticate(
                request.headers.get("authorization"),
                sandbox.config,
                sandbox.clock,
                tasks_api=tasks_api,
            )
            response = await handler(request, sandbox)
            code: int | None = 0
        except SandboxError as exc:
            response = error_response(exc)
            code = exc.code
        # The recorder (outermost middleware) counts the answer as finally sent, after chaos.
        request.scope[ROUTE_KEY] = route
        request.scope[CODE_KEY] = code
        return response

    endpoint.__name__ = route
    return endpoint


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object body, or a 400/1200 that says what is wrong."""
    raw = await request.body()
    if not raw.strip():
        raise SandboxError(1200, "Request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SandboxError(1200, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SandboxError(1200, f"Request body must be a JSON object, got {type(body).__name__}")
    return body


def not_found(sandbox: Sandbox, what: str = "Task not found by id/external id") -> SandboxError:
    """The "unknown task" answer in the configured spelling (400/1201 as seen live, or 404/1203)."""
    if sandbox.config.not_found == "1203":
        return SandboxError(1203, what, status=404)
    return SandboxError(1201, what)
