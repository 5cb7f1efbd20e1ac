"""The running sandbox (:class:`Sandbox`) and what every Kling route shares.

``app.state.sandbox`` is a :class:`Sandbox`: config, clock, account state, callback deliverer,
chaos engine and script, so tests can inspect or drive any of them directly.
:func:`kling_endpoint` wraps a route handler with what Kling does on every call: authenticate,
answer errors in the envelope (or as the script says), and name the answer for the ground truth.
Every body is written by :mod:`klingwatch.kling.envelope` and :mod:`klingwatch.kling.models`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from klingwatch.clock import Clock
from klingwatch.kling.envelope import dumps, failure, success
from klingwatch.sandbox.auth import authenticate
from klingwatch.sandbox.chaos import CODE_KEY
from klingwatch.sandbox.config import SandboxConfig
from klingwatch.sandbox.delivery import FAULT_KEY, RAW_KEY
from klingwatch.sandbox.script import Answer, Script, ScriptedAnswer
from klingwatch.sandbox.state import SandboxError, SandboxState

if TYPE_CHECKING:
    from klingwatch.sandbox.callbacks import CallbackDeliverer
    from klingwatch.sandbox.chaos import ChaosEngine

__all__ = [
    "CODE_KEY",
    "ROUTE_KEY",
    "Handler",
    "Sandbox",
    "error_response",
    "json_response",
    "kling_endpoint",
    "not_found",
    "ok",
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
    script: Script = field(default_factory=Script)

    def reset(self) -> None:
        """Back to an empty account: tasks, counters, pending callbacks, chaos draws, and the
        configured script."""
        self.state.reset()
        self.callbacks.reset()
        if self.chaos is not None:
            self.chaos.reset()
        self.script.reset()

    def base_url(self, request: Request) -> str:
        """The base of result URLs for tasks created by ``request``."""
        return self.config.public_base_url or str(request.base_url).rstrip("/")

    def read_scripted(
        self, request: Request, idents: Iterable[str] = (), *, looked_up: Iterable[str] = ()
    ) -> None:
        """Before a read naming ``idents`` is served: count the external ids it ``looked_up``,
        and raise :class:`ScriptedAnswer` if the script answers it instead."""
        self.state.note_lookups(looked_up)
        answer = self.script.for_read(idents, request.scope[ROUTE_KEY])
        if answer is not None and answer.reply != "serve":
            raise ScriptedAnswer(answer)


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


Handler = Callable[[Request, Sandbox], Awaitable[Response]]


def kling_endpoint(
    route: str, handler: Handler, *, tasks_api: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: auth, the error envelope, scripted answers and ground-truth
    counting around ``handler``. ``route`` names the route in ``/sandbox/stats`` and in
    scripts (``"GET /tasks"``)."""

    async def endpoint(request: Request) -> Response:
        sandbox = sandbox_of(request)
        # The recorder (outermost middleware) counts the answer as finally sent, after chaos.
        request.scope[ROUTE_KEY] = route
        code: int | str | None = 0
        try:
            authenticate(
                request.headers.get("authorization"),
                sandbox.config,
                sandbox.clock,
                tasks_api=tasks_api,
            )
            response = await handler(request, sandbox)
        except SandboxError as exc:
            response, code = error_response(exc), exc.code
        except ScriptedAnswer as scripted:
            response, code = _scripted_response(request, scripted)
        request.scope[CODE_KEY] = code
        return response

    endpoint.__name__ = route
    return endpoint


# -- answers -----------------------------------------------------------------------------------
def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``payload`` as Kling's compact JSON."""
    return Response(
        dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


def ok(data: Any) -> Response:
    """A success answer: HTTP 200, code 0, "SUCCEED", ``data``."""
    return json_response(success(data))


def error_response(exc: SandboxError) -> Response:
    """An error answer: the protocol's HTTP status, ``{code, message, request_id}``, no data."""
    headers = {"Retry-After": "1"} if exc.code == 1302 else None
    return json_response(failure(exc.code, exc.message), exc.status, headers)


def _scripted_response(request: Request, scripted: ScriptedAnswer) -> tuple[Response, int | str]:
    """A scripted answer, and what the ground truth calls it (its code, or the fault)."""
    answer: Answer = scripted.answer
    if answer.reply == "error":
        assert answer.code is not None
        body = failure(answer.code, answer.error_message)
        return json_response(body, answer.http_status, answer.headers), answer.code
    if answer.reply == "raw":
        request.scope[RAW_KEY] = True
        headers = {**answer.headers}
        if answer.content_type:
            headers["content-type"] = answer.content_type
        return Response(answer.body, status_code=answer.http_status, headers=headers), "raw"
    # No answer at all: the delivery layer withholds whatever is returned here.
    fault = "timeout" if answer.reply == "timeout" else "dropped"
    request.scope[FAULT_KEY] = fault
    if isinstance(scripted.served, Response):
        return scripted.served, fault
    return json_response(failure(5000, "Server internal error"), 500), fault


# -- reading requests --------------------------------------------------------------------------
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
