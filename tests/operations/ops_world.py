"""The world of the operations tests: an :class:`Operations` on the sandbox (in-process, on a
manual clock) and a real SQLite ledger."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from klingwatch.clock import ManualClock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.products import Family
from klingwatch.operations import Operations
from klingwatch.sandbox import SandboxConfig, create_app
from klingwatch.settings import Settings
from klingwatch.store import Ledger
from klingwatch.store.async_ledger import AsyncLedger

API_KEY, AK, SK = "ops-key", "ops-ak", "ops-sk-0123456789abcdef0123456789abcdef"
BASE = "http://sandbox.test"


@contextlib.asynccontextmanager
async def operations(
    tmp_path: Path, *, api_key: bool = True, clock: ManualClock | None = None, **settings: object
) -> AsyncIterator[tuple[Operations, Ledger, object]]:
    """Operations with a client on the sandbox (an API key, or AK/SK), the ledger underneath,
    and the sandbox's app (for its ``/sandbox/`` truth)."""
    clock = clock or ManualClock()
    app = create_app(
        SandboxConfig(
            api_keys=(API_KEY,),
            access_keys={AK: SK},
            failure_rate=0.0,
            seed=3,
            slots={Family.VIDEO: 100},
        ),
        clock=clock,
    )
    creds = {"api_key": API_KEY} if api_key else {"access_key": AK, "secret_key": SK}
    client = KlingClient(
        **creds,
        base_url=BASE,
        transport=httpx.ASGITransport(app=app),
        clock=clock,
        requests_per_second=1000.0,
    )
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(db, clock=clock)
    aledger = AsyncLedger(ledger)
    ops = Operations(
        settings=Settings.load(db=db, **settings), ledger=aledger, clock=clock, client=client
    )
    try:
        yield ops, ledger, app
    finally:
        await client.aclose()
        await aledger.aclose()
        ledger.close()
