"""One connection to Kling: base URL, auth, the httpx client, statistics, read retries.

:class:`Session` is the single boundary between klingwatch and the network. Every request goes
through :meth:`Session.exchange`, which signs it (:class:`~klingwatch.kling.auth.KlingAuth`),
translates httpx's exceptions into klingwatch's (chained with ``raise ... from``), unwraps Kling's
envelope (:mod:`klingwatch.kling.envelope`), and, through an httpx response hook, counts every
exchange in :class:`~klingwatch.kling.stats.ClientStats` and logs it at DEBUG (method, path,
status, code, request id; never headers). :meth:`Session.read` adds the read retry policy.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from klingwatch.clock import Clock
from klingwatch.kling.auth import KlingAuth
from klingwatch.kling.budget import RequestBudget
from klingwatch.kling.envelope import peek, unwrap
from klingwatch.kling.errors import (
    ConfigurationError,
    KlingConnectionError,
    KlingError,
    KlingTimeout,
)
from klingwatch.kling.retry import RetryPolicy, retry_read
from klingwatch.kling.stats import ClientStats

__all__ = ["Session"]

logger = logging.getLogger(__name__)

_ROUTE = "klingwatch_route"  # request extension: (owner, route template), for stats and logs
_T = TypeVar("_T")


class Session:
    """Sends requests to one Kling base URL with one set of credentials.

    ``http_client`` (kept open on :meth:`aclose`) or ``transport`` replace the network; with
    neither, a fresh ``httpx.AsyncClient`` with ``timeout`` seconds per request is made (and
    closed on :meth:`aclose`). Every request passes ``budget`` (rate and concurrency).
    """

    def __init__(
        self,
        *,
        base_url: str,
        auth: KlingAuth,
        clock: Clock,
        retry: RetryPolicy,
        budget: RequestBudget,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        if transport is not None and http_client is not None:
            raise ConfigurationError("give KlingClient a transport or an http_client, not both")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.clock = clock
        self.stats = ClientStats()
        self.budget = budget
        self._retry = retry
        self._rng = random.Random()
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(transport=transport, timeout=timeout)
        http_client.event_hooks.setdefault("response", []).append(self._on_response)
        self._http = http_client

    async def aclose(self) -> None:
        """Close the HTTP connections, unless the ``http_client`` was the caller's."""
        if self._owns_http:
            await self._http.aclose()

    async def read(self, send: Callable[[], Awaitable[_T]], what: str) -> _T:
        """``send()`` under the read retry policy (retries are counted in :attr:`stats`)."""

        def count(_: KlingError) -> None:
            self.stats.retries += 1

        return await retry_read(
            send, policy=self._retry, clock=self.clock, what=what, rng=self._rng, on_retry=count
        )

    async def exchange(
        self,
        method: str,
        path: str,
        route: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        lookup: bool = False,
    ) -> Any:
        """Send one request; return the envelope's ``data`` or raise the matching KlingError."""
        try:
            request = self._http.build_request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                extensions={_ROUTE: (id(self), route)},
            )
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"bad Kling URL {self.base_url + path!r}: {exc}") from exc
        try:
            async with self.budget.request():
                response = await self._http.send(request, auth=self.auth)
        except httpx.TimeoutException as exc:
            self._failed(method, path, route, "timeout", exc)
            # A connect or pool timeout means nothing was sent; anything later is ambiguous.
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise KlingTimeout(
                f"{method} {path}: no answer from {self.base_url} in time "
                f"({type(exc).__name__}); check the network, or raise the timeout",
                may_exist=sent,
            ) from exc
        except httpx.ConnectError as exc:
            self._failed(method, path, route, "connection", exc)
            raise KlingConnectionError(
                f"{method} {path}: cannot connect to {self.base_url} ({exc}); check "
                "KLING_API_BASE and the network",
                may_exist=False,
            ) from exc
        except httpx.TransportError as exc:
            self._failed(method, path, route, "connection", exc)
            raise KlingConnectionError(
                f"{method} {path}: the connection to {self.base_url} failed before the answer "
                f"was complete ({type(exc).__name__}: {exc})"
            ) from exc
        return unwrap(response, f"{method} {path}", lookup=lookup, now=self.clock.time())

    def _failed(self, method: str, path: str, route: str, kind: str, exc: Exception) -> None:
        self.stats.record(method, route, (kind, ""))
        logger.debug("%s %s -> %s (%s)", method, path, kind, type(exc).__name__)

    async def _on_response(self, response: httpx.Response) -> None:
        """httpx response hook: count and log every exchange (auth re-sends included).

        Only this client's own requests count: a shared ``http_client`` may carry others
        (downloads, another KlingClient) whose bodies must not be read here.
        """
        request = response.request
        tag = request.extensions.get(_ROUTE)
        if not (isinstance(tag, tuple) and tag[0] == id(self)):
            return
        route = str(tag[1])
        await response.aread()
        envelope = peek(response.content)
        code = "" if envelope is None else str(envelope["code"])
        request_id = None if envelope is None else envelope.get("request_id")
        self.stats.record(request.method, route, (str(response.status_code), code))
        logger.debug(
            "%s %s -> HTTP %d code=%s request_id=%s",
            request.method,
            request.url.path,
            response.status_code,
            code or "-",
            request_id or "-",
        )
