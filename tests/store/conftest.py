"""Fixtures for the ledger tests: an open ledger on each backend, on a manual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klingwatch.clock import ManualClock
from klingwatch.store import Ledger


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ledger(ledger_url: str, clock: ManualClock) -> Iterator[Ledger]:
    """A freshly migrated ledger (SQLite file, then PostgreSQL), closed afterwards."""
    opened = Ledger.open(ledger_url, clock=clock)
    try:
        yield opened
    finally:
        opened.close()
