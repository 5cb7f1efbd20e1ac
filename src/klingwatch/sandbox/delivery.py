"""How answers leave the sandbox: stamped with its clock's ``Date``, or, on purpose, not at all.

Every answer carries a ``Date`` header from the sandbox clock, as Kling's do (a client that is
refused for an expired token learns Kling's time from it), except a scripted ``raw`` answer,
which goes out exactly as written.

A layer inside (a scripted answer, chaos) may mark a request in its ASGI scope
(:data:`FAULT_KEY`) as getting no answer:

* ``"dropped"``: over a socket the status line and headers go out, announcing a body that never
  comes, and the connection closes (the client sees the peer hang up mid-answer);
* ``"timeout"``: over a socket nothing goes out until the client gives up and disconnects (at
  most :data:`NO_ANSWER_HOLD` real seconds, then the connection is dropped).

In process there is no socket to hang up or leave waiting, so :class:`SandboxTransport`, the
in-process transport, raises what httpx raises for those over a network
(``httpx.RemoteProtocolError``, ``httpx.ReadTimeout``) at once. A plain ``httpx.ASGITransport``
cannot be left unanswered: use :class:`SandboxTransport` in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
from contextvars import ContextVar
from typing import TYPE_CHECKING

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from klingwatch.sandbox.chaos import FAULT_KEY

if TYPE_CHECKING:
    from klingwatch.sandbox.runtime import Sandbox

__all__ = ["FAULT_KEY", "NO_ANSWER_HOLD", "RAW_KEY", "DeliveryMiddleware", "SandboxTransport"]

#: ASGI scope key: the answer is a scripted raw one, to be sent exactly as written.
RAW_KEY = "klingwatch.sandbox.raw"
#: Real seconds a "timeout" leaves a socket unanswered at most (past any client's patience).
NO_ANSWER_HOLD = 120.0

# Set by SandboxTransport around each request it carries: the faults the sandbox chose for it.
_IN_PROCESS: ContextVar[list[str] | None] = ContextVar(
    "klingwatch_sandbox_in_process", default=None
)


class DeliveryMiddleware:
    """Puts the sandbox clock's ``Date`` on every answer and carries out "no answer" faults."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def deliver(message: Message) -> None:
            if message["type"] == "http.response.start" and not scope.get(RAW_KEY):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                date = email.utils.formatdate(self.sandbox.clock.time(), usegmt=True)
                message = {**message, "headers": [*headers, (b"date", date.encode())]}
            if scope.get(FAULT_KEY):
                held.append(message)
            else:
                await send(message)

        await self.app(scope, receive, deliver)
        fault = scope.get(FAULT_KEY)
        if not fault:
            return
        in_process = _IN_PROCESS.get()
        if in_process is not None:
            # Complete the exchange for httpx's ASGITransport; SandboxTransport raises instead.
            in_process.append(fault)
            for message in held:
                await send(message)
            return
        if fault == "timeout":
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(NO_ANSWER_HOLD):
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    return  # the client gave up: nothing to send, nobody to send it to
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        headers = [
            (k, v)
            for k, v in (start or {}).get("headers", [])
            if k.lower() not in (b"content-length", b"transfer-encoding")
        ]
        # Announce a body, send none: returning now makes the server close the connection.
        await send(
            {
                "type": "http.response.start",
                "status": (start or {}).get("status", 500),
                "headers": [*headers, (b"content-length", str(max(len(body), 1)).encode())],
            }
        )


class SandboxTransport(httpx.AsyncBaseTransport):
    """The sandbox app in this process, answering as it would over a socket.

    ``httpx.ASGITransport`` underneath; where the sandbox leaves a request unanswered on purpose
    (a scripted timeout, a dropped connection), this raises ``httpx.ReadTimeout`` or
    ``httpx.RemoteProtocolError``, as a network client would see them::

        app = create_app(SandboxConfig(api_keys=("k",)), clock=ManualClock())
        client = KlingClient(api_key="k", base_url="http://sandbox.test",
                             transport=SandboxTransport(app))
    """

    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        faults: list[str] = []
        token = _IN_PROCESS.set(faults)
        try:
            response = await self._asgi.handle_async_request(request)
        finally:
            _IN_PROCESS.reset(token)
        if "timeout" in faults:
            raise httpx.ReadTimeout("the sandbox left the request unanswered", request=request)
        if "dropped" in faults:
            raise httpx.RemoteProtocolError(
                "server disconnected without sending a complete response", request=request
            )
        return response

    async def aclose(self) -> None:
        await self._asgi.aclose()
