"""Helpers shared by the sandbox tests: a known config, JWTs, in-process clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import jwt
from starlette.applications import Starlette

from klingwatch.sandbox import SandboxConfig, SandboxTransport

ACCESS_KEY = "ak-test"
SECRET_KEY = "sk-test-secret-that-is-long-enough-for-hs256"
API_KEY = "api-key-test"

#: Short, fixed durations so a test knows exactly when a task moves.
FAST = {
    "queue_p50": 10.0,
    "queue_p95": 10.0,
    "run_p50": 60.0,
    "run_p95": 60.0,
}


def make_config(**overrides: Any) -> SandboxConfig:
    """A config with known keys, no failures and fixed durations (10 s queued, 60 s running)."""
    fields: dict[str, Any] = {
        "access_keys": {ACCESS_KEY: SECRET_KEY},
        "api_keys": (API_KEY,),
        "failure_rate": 0.0,
        "straggler_rate": 0.0,
        "durations": dict.fromkeys(("video", "image", "try_on"), FAST),
    }
    fields.update(overrides)
    return SandboxConfig(**fields)


def jwt_for(
    now: float,
    *,
    exp_in: float = 1800,
    nbf_ago: float = 5,
    key: str = ACCESS_KEY,
    secret: str = SECRET_KEY,
) -> str:
    claims = {"iss": key, "exp": int(now + exp_in), "nbf": int(now - nbf_ago)}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


SandboxFactory = Callable[..., Starlette]


def client_for(app: Starlette, token: str | None = API_KEY) -> httpx.AsyncClient:
    """An httpx client on an in-process sandbox (API key auth unless ``token`` says otherwise)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=SandboxTransport(app), base_url="http://sandbox.test", headers=headers
    )
