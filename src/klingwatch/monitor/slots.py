"""Slots: how many of the account's concurrency slots each pack family has free.

Kling runs a fixed number of tasks at once per account and pack family (video, image, try-on;
an image task with ``n`` images holds ``n``). Over the limit a create answers 1303 and creates
nothing. :class:`Slots` keeps the submitter's view of it:

* the **limit** of a family is the lower of the configured one (``KLINGWATCH_SLOTS_VIDEO``, ...)
  and the one learned from a 1303 (kept in the ledger by :mod:`klingwatch.monitor.gates`, so it
  survives restarts and is shared by replicas); ``None`` while neither is known;
* the slots **in use** are counted in the ledger, across every replica sharing it: active tasks
  (``unknown`` ones included: until a lookup says otherwise they may hold one) plus queued tasks
  under a live lease, which are creates on the wire (:meth:`~klingwatch.store.Ledger.
  slots_in_use`); the submitter's claim counts and leases in one transaction
  (:meth:`~klingwatch.store.Ledger.claim_to_send`), so no process's memory is trusted;
* a **1303** while N slots were in use teaches the limit N (:meth:`learn`).

Limits are read from the ledger once a pass (:meth:`refresh`): another process may have learned
one meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from klingwatch.kling.products import Family
from klingwatch.monitor import gates
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["Slots"]

logger = logging.getLogger(__name__)


class Slots:
    """The slot limits and the slots in use, per pack family (see the module docstring)."""

    def __init__(self, ledger: AsyncLedger, configured: Mapping[str, int] | None = None) -> None:
        self.ledger = ledger
        #: Limits given by the settings, by family.
        self.configured = {k: int(v) for k, v in (configured or {}).items() if v}
        self._limits: dict[str, int | None] = {}

    def __repr__(self) -> str:
        return f"Slots(limits={self._limits!r})"

    async def refresh(self) -> None:
        """Read every family's learned limit again (once a pass)."""
        learned = await self.ledger.read(gates.learned_limits)
        self._limits = {f.value: self._lower(f.value, learned.get(f.value)) for f in Family}

    def limit(self, family: str) -> int | None:
        """The limit in force for ``family`` as of the last :meth:`refresh`."""
        return self._limits.get(family, self.configured.get(family))

    async def in_use(self, family: str, now: float) -> int:
        """Slots of ``family`` taken now, by every replica (see the module docstring)."""
        return await self.ledger.slots_in_use(family, now)

    async def learn(self, family: str, in_flight: int) -> int | None:
        """A 1303 came while ``in_flight`` slots of ``family`` were in use: the limit is at most
        that. Returns the limit now in force."""
        learned = await self.ledger.write(gates.learn_slots, family, in_flight)
        self._limits[family] = self._lower(family, learned)
        return self._limits[family]

    def _lower(self, family: str, learned: int | None) -> int | None:
        known = [v for v in (self.configured.get(family), learned) if v]
        return min(known) if known else None
