"""Who may call the sandbox: HS256 JWTs signed with a SecretKey, and API keys.

Answers as Kling does (KLING_PROTOCOL.md section 1): HTTP 401 with 1001 (no header), 1000 (not a
Bearer credential), 1002 (bad signature, unknown key, unknown API key), 1003 (``nbf`` in the
future) and 1004 (``exp`` passed). Times are checked against the sandbox clock, not the machine's,
so a manual clock can expire a token. The new-standard routes take API keys only: a JWT there
answers 401/1002 "does not support AK/SK".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jwt

from klingwatch.clock import Clock
from klingwatch.sandbox.config import SandboxConfig
from klingwatch.sandbox.state import SandboxError

__all__ = ["Principal", "authenticate"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The credential a request came with."""

    kind: Literal["jwt", "api_key", "open"]
    key: str  # the AccessKey, the API key's last four characters, or "" when open


def _bearer(header: str | None) -> str:
    if header is None or not header.strip():
        raise SandboxError(1001, "Authorization is empty")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SandboxError(1000, "Authentication failed: expected 'Bearer <token>'")
    return token.strip()


def authenticate(
    header: str | None, config: SandboxConfig, clock: Clock, *, tasks_api: bool
) -> Principal:
    """Check an ``Authorization`` header; raise :class:`SandboxError` with Kling's code."""
    if config.auth_open:
        return Principal("open", "")
    token = _bearer(header)
    if token in config.api_keys:
        return Principal("api_key", token[-4:])
    if token.count(".") != 2:
        raise SandboxError(1002, "Authorization is invalid")
    if tasks_api:
        raise SandboxError(
            1002, "Authorization is invalid: this API does not support AK/SK, use an API key"
        )
    return Principal("jwt", _check_jwt(token, config, clock))


def _check_jwt(token: str, config: SandboxConfig, clock: Clock) -> str:
    try:
        unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise SandboxError(1002, "Authorization is invalid: not a JWT") from None
    access_key = unverified.get("iss")
    secret = config.access_keys.get(str(access_key)) if access_key is not None else None
    if secret is None:
        raise SandboxError(1002, "Authorization is invalid: unknown access key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            # Time claims are checked below, against the sandbox clock.
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        raise SandboxError(1002, "Authorization is invalid: signature does not match") from None
    now = clock.time()
    leeway = config.jwt_leeway
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float):
        raise SandboxError(1002, "Authorization is invalid: the token has no exp claim")
    if isinstance(nbf, int | float) and now + leeway < nbf:
        raise SandboxError(1003, "Authorization is not active yet (nbf is in the future)")
    if now - leeway >= exp:
        raise SandboxError(1004, "Authorization has expired")
    return str(access_key)
