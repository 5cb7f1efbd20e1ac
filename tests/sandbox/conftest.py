"""Fixtures for the sandbox tests: an in-process sandbox on a manual clock, and its callers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sandboxkit import SandboxFactory, client_for, make_config
from starlette.applications import Starlette

from klingwatch.clock import ManualClock
from klingwatch.sandbox import create_app
from klingwatch.sandbox.runtime import Sandbox


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(auto_advance=False)


@pytest.fixture
def make_app(clock: ManualClock) -> SandboxFactory:
    def factory(**overrides: Any) -> Starlette:
        transport = overrides.pop("callback_transport", None)
        return create_app(make_config(**overrides), clock=clock, callback_transport=transport)

    return factory


@pytest.fixture
def app(make_app: SandboxFactory) -> Starlette:
    return make_app()


@pytest.fixture
def sandbox(app: Starlette) -> Sandbox:
    sb: Sandbox = app.state.sandbox
    return sb


@pytest.fixture
async def api(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the in-process sandbox, authenticated with the API key."""
    async with client_for(app) as client:
        yield client
