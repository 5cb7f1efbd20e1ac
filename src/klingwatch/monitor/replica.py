"""Replicas: who this engine is among several sharing one ledger, and keeping its leases alive.

Every engine has an owner id (:func:`replica_id`): ``KLINGWATCH_REPLICA_ID`` when set (it must
then differ between replicas running at once), else ``host:pid:random``, so two containers that
both run as pid 1, or a process restarted with its old pid, never pass for each other. The id is
what the ledger's leases are stamped with (:mod:`klingwatch.store.leases`).

A lease runs for ``KLINGWATCH_LEASE_SECONDS`` (nominal seconds, scaled like every engine time),
so a replica killed with SIGKILL stops holding anything within one lease period. Work that may
outlast a lease (a create on the wire, a download) is wrapped in :func:`kept`, which renews the
leases every third of a period for as long as the work runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Sequence

from klingwatch.clock import Clock
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["DEFAULT_LEASE_SECONDS", "MIN_LEASE_REAL", "kept", "lease_span", "replica_id"]

logger = logging.getLogger(__name__)

#: How long a lease lasts unless configured (nominal seconds).
DEFAULT_LEASE_SECONDS = 60.0
#: The shortest a lease lasts in real seconds, whatever ``KLINGWATCH_TIME_SCALE``: a lease stands
#: for real work (a create on the wire, a download) and a loaded machine can stall an event loop
#: for a second or more. At time scale 0.02 a 60 s lease would be 1.2 real s: a renewal a little
#: late, and another replica took a create still on the wire for an orphan, sent more creates
#: than the slots allowed (1303s) and looked it up needlessly.
MIN_LEASE_REAL = 5.0


def lease_span(clock: Clock, lease_seconds: float) -> float:
    """How long a lease of ``lease_seconds`` nominal seconds runs on ``clock``: scaled like every
    engine time, but a compressed clock never shrinks it below :data:`MIN_LEASE_REAL` (nor a
    shorter configured lease below itself)."""
    return max(clock.scaled(lease_seconds), min(lease_seconds, MIN_LEASE_REAL))


def replica_id(configured: str | None = None) -> str:
    """``configured`` (``KLINGWATCH_REPLICA_ID``) when given, else ``host:pid:random``."""
    if configured:
        return configured
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@contextlib.asynccontextmanager
async def kept(
    ledger: AsyncLedger,
    clock: Clock,
    local_ids: Sequence[int],
    *,
    owner: str,
    lease_seconds: float,
) -> AsyncIterator[None]:
    """Renew ``owner``'s leases on ``local_ids`` while the block runs.

    ``lease_seconds`` is nominal. The renewals are timed in real seconds on purpose: a lease
    protects against real time passing (a slow request), also under a manual test clock.
    """
    period = lease_span(clock, lease_seconds)

    async def renew() -> None:
        ids = list(local_ids)
        while ids:
            await asyncio.sleep(period / 3)
            try:
                ids = await ledger.renew(ids, clock.time() + period, owner=owner)
            except Exception:  # an outage: the next renewal tries again; the work goes on
                logger.warning("could not renew %d lease(s)", len(ids), exc_info=True)

    keeper = asyncio.create_task(renew(), name="klingwatch-leases") if local_ids else None
    try:
        yield
    finally:
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
