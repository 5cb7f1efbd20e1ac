"""Fixtures for the web face: a real SQLite ledger, a manual clock, the app over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from serverkit import AppFactory, app_for, client_of, settings

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.store import Ledger


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(ledger_url: str, clock: ManualClock) -> Iterator[Ledger]:
    """A real ledger: a SQLite file, and again on PostgreSQL (``ledger_url`` runs both)."""
    with Ledger.open(ledger_url, clock=clock) as opened:
        yield opened


@pytest.fixture
def make_app(ledger: Ledger, clock: ManualClock) -> AppFactory:
    def make(*, client: KlingClient | None = None, **overrides: Any) -> FastAPI:
        return app_for(ledger, settings=settings(**overrides), clock=clock, client=client)

    return make


@pytest.fixture
async def http(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with default settings (no API token, no webhook secret)."""
    async with client_of(make_app()) as client:
        yield client
