"""What a request must look like before any route sees it: a known Host, and for writes, our own
page or a script, with a JSON body.

Without an API token the dashboard is open on loopback, so two browser tricks would otherwise let
any web page spend the user's money:

* **DNS rebinding.** A page on ``evil.example`` re-points its name at 127.0.0.1 and then talks to
  this server as if it were its own site; the browser still sends ``Host: evil.example``. So every
  request must name a host from an allow-list (:class:`HostPolicy`), or it gets 400.
* **Cross-site writes.** A page anywhere can make the browser POST a form (or a ``text/plain``
  ``fetch``) to ``http://127.0.0.1:8000/api/...``. So every state-changing request to ``/api``
  (and the login form) is refused with 403 when it comes from another origin (an ``Origin`` that
  is not this server's own, or ``Sec-Fetch-Site: cross-site``/``same-site``), and a write to
  ``/api`` that carries a body must say ``Content-Type: application/json`` or it gets 415. A
  browser cannot send a JSON body to another origin without a CORS preflight, which this server
  never grants.

Scripts (``curl``, Python) send no ``Origin`` and are unaffected. The callback receiver is only
checked for its Host: Kling posts JSON without an ``Origin``, to ``--public-url``'s host, which the
allow-list always holds.

This is a pure ASGI middleware rather than Starlette's ``TrustedHostMiddleware``: that one answers
a bare "Invalid host header" and knows nothing of origins or bodies, and wrapping the event
stream in ``BaseHTTPMiddleware`` would buffer it.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["WILDCARD_BINDS", "HostPolicy", "RequestGuard", "host_of"]

#: Bind addresses that listen on every interface.
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})
#: Names of this machine that are always allowed.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: Methods that change state; everything else is a read.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: What ``Sec-Fetch-Site`` says for requests a browser makes on a page's own behalf.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def host_of(netloc: str) -> str | None:
    """The host name of a ``Host`` header or URL netloc, lower case, without port, brackets or a
    trailing dot (``[::1]:8000`` -> ``::1``); ``None`` when it is not a host at all."""
    try:
        host = urlsplit(f"//{netloc.strip()}").hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` headers (and which ``Origin`` values) this server answers to.

    Always: ``localhost``, ``127.0.0.1``, ``::1``, the bind address, ``--public-url``'s host, and
    any ``extra`` names. Bound to every interface (``0.0.0.0``, ``::``), also this machine's host
    names and any IP address: an address typed in the browser cannot be a rebinding trick, which
    needs a name the attacker controls. Ports are not compared (a proxy may forward any port).
    """

    hosts: frozenset[str]
    any_ip: bool = False
    #: ``scheme://host[:port]`` origins accepted besides the request's own (``--public-url``'s).
    origins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls,
        *,
        bind_host: str | None = None,
        public_url: str | None = None,
        extra: Iterable[str] = (),
    ) -> HostPolicy:
        names = set(LOOPBACK_NAMES)
        names.update(h for h in (host_of(name) for name in extra) if h)
        any_ip = False
        if bind_host is not None:
            bind = bind_host.strip().strip("[]").lower()
            if bind in WILDCARD_BINDS:
                any_ip = True
                names.update(n.lower() for n in (socket.gethostname(), socket.getfqdn()) if n)
            else:
                names.add(bind)
        origins: set[str] = set()
        if public_url:
            parts = urlsplit(public_url)
            if parts.hostname:
                names.add(parts.hostname.rstrip(".").lower())
                origins.add(_origin(parts.scheme, parts.netloc))
        return cls(hosts=frozenset(names), any_ip=any_ip, origins=frozenset(origins))

    def allows(self, host: str) -> bool:
        """Whether a request for ``host`` (from :func:`host_of`) is answered."""
        return host in self.hosts or (self.any_ip and _is_ip(host))

    def describe(self) -> str:
        """The allowed names, for an error message."""
        names = ", ".join(sorted(self.hosts))
        return names + (", or any IP address" if self.any_ip else "")


def _origin(scheme: str, netloc: str) -> str:
    """``scheme://netloc`` in lower case, without the scheme's default port."""
    scheme, netloc = scheme.lower(), netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}"


class RequestGuard:
    """ASGI middleware enforcing :class:`HostPolicy` and the same-origin, JSON-only writes.

    ``api_prefix`` is where the writes that must be same-origin JSON live (``/api/``; the MCP
    server's ``/mcp``)."""

    def __init__(self, app: ASGIApp, *, policy: HostPolicy, api_prefix: str = "/api/") -> None:
        self.app = app
        self.policy = policy
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.check(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, detail = problem
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def check(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, reason)`` when the request is refused, else ``None``."""
        headers = Headers(scope=scope)
        raw_host = headers.get("host", "")
        host = host_of(raw_host)
        if host is None or not self.policy.allows(host):
            return (
                400,
                f"unknown Host header {raw_host!r}: this server answers to "
                f"{self.policy.describe()} (serve --allow-host NAME adds a name)",
            )
        path: str = scope.get("path", "")
        writes = scope["type"] == "http" and scope.get("method", "GET") in WRITE_METHODS
        if not writes or not (path.startswith(self.api_prefix) or path == "/login"):
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in OWN_FETCH_SITES:
            return 403, f"cross-site request refused (Sec-Fetch-Site: {site}): use the dashboard"
        origin = headers.get("origin")
        if origin is not None and not self._own_origin(origin, scope, raw_host):
            return 403, f"cross-origin request refused (Origin: {origin}): use the dashboard"
        if path.startswith(self.api_prefix) and _has_foreign_body(headers):
            kind = headers.get("content-type") or "none"
            return 415, f"send the body as JSON (Content-Type: application/json), not {kind}"
        return None

    def _own_origin(self, origin: str, scope: Scope, raw_host: str) -> bool:
        parts = urlsplit(origin.strip())
        if not parts.scheme or not parts.netloc:
            return False  # "null" (a sandboxed frame, a file://) is nobody's own page
        given = _origin(parts.scheme, parts.netloc)
        # The request's own origin, whatever scheme a proxy in front of us terminated.
        if given in {_origin(s, raw_host) for s in ("http", "https", scope.get("scheme", "http"))}:
            return True
        return given in self.policy.origins


def _has_foreign_body(headers: Headers) -> bool:
    """A body, or a declared type, that is not JSON (no type and no body is a bare action)."""
    kind = headers.get("content-type")
    if kind is not None:
        media = kind.split(";", 1)[0].strip().lower()
        return not (media == "application/json" or media.endswith("+json"))
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() != "0")
