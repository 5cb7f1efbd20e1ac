"""Who may read the API and the dashboard.

One bearer token (``KLINGWATCH_API_TOKEN``) guards ``/api`` and the dashboard; ``/healthz``,
``/metrics`` and the callback receiver (which has its own secret path) stay open. Scripts send
``Authorization: Bearer <token>``; a browser logs in once (a form, or ``?token=`` in a link) and
then carries an HTTP-only cookie. Without a configured token everything is open, which is only
allowed on a loopback address (:func:`check_bind`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from fastapi import HTTPException, Request, status

from klingwatch.kling.errors import ConfigurationError

__all__ = ["COOKIE_NAME", "check_bind", "is_loopback", "request_token", "token_matches"]

logger = logging.getLogger(__name__)

#: The cookie a logged-in browser carries.
COOKIE_NAME = "klingwatch_token"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``127.0.0.1``, ``::1``, ``localhost``)."""
    text = host.strip().strip("[]").lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_token: str | None) -> None:
    """Refuse to serve an open API beyond loopback.

    Raises :class:`~klingwatch.kling.errors.ConfigurationError` (one clear line) when ``host`` is
    reachable from other machines and no API token is configured.
    """
    if api_token or is_loopback(host):
        return
    raise ConfigurationError(
        f"refusing to serve on {host} without an API token: set KLINGWATCH_API_TOKEN "
        "(anyone who can reach this address could read and change your tasks), "
        "or bind to 127.0.0.1"
    )


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def request_token(request: Request) -> str | None:
    """The token a request presents: a bearer header, else the login cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE_NAME)


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the API token (when one is set)."""
    expected: str | None = request.app.state.klingwatch.api_token
    if expected is None:
        return
    if not token_matches(request_token(request), expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=(
                "missing or wrong API token: send 'Authorization: Bearer <KLINGWATCH_API_TOKEN>'"
            ),
            headers={"WWW-Authenticate": "Bearer"},
        )
