"""The ledger as the event loop sees it: every call awaited, none blocking the loop.

:class:`AsyncLedger` is the one async boundary between the engine and server (one event loop,
where callbacks, the dashboard, ``/healthz`` and the poller share a thread) and the ledger's
database. Each :class:`~klingwatch.store.Ledger` method runs on a worker thread and is awaited:

* **writes** run on one writer thread, in the order they were awaited. SQLite has one writer per
  file anyway; one thread keeps this process's own writes from queueing on the file lock in
  parallel, and on PostgreSQL keeps its row locks taken in one order.
* **reads** run on a small pool of reader threads, so a write stuck behind another process's
  lock (SQLite's busy wait, a PostgreSQL ``FOR UPDATE`` held by another replica) never delays a
  read: in WAL mode SQLite readers do not wait for writers, nor do PostgreSQL's.

Why threads and not SQLAlchemy's ``AsyncEngine``: the SQL of the ledger is one synchronous code
path (SQLAlchemy Core in :mod:`klingwatch.store`) used by short-lived commands that have no event
loop and by the engine alike; ``AsyncEngine`` on SQLite is itself a thread per connection
(aiosqlite) under a greenlet bridge, and on PostgreSQL a blocked ``FOR UPDATE`` waits just the
same. A thread boundary gives the loop the same freedom with one implementation of every query.

A call that is cancelled while its thread is running still runs to its end (a transaction is
never cut in half); its result is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import make_url

from klingwatch.clock import Clock
from klingwatch.store.budget import BatchBudget, SendClaim
from klingwatch.store.incidents import IncidentRecord, Sighting
from klingwatch.store.ledger import Ledger
from klingwatch.store.outbox import OutboundEvent
from klingwatch.store.records import (
    AddResult,
    AlertRecord,
    BatchRecord,
    Change,
    DownloadRecord,
    DurationStats,
    EventRecord,
    LocalStatus,
    NewTask,
    Observation,
    TaskRecord,
)

__all__ = ["AsyncLedger"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Reader threads: the dashboard, the API, callbacks and the engine read at once.
READERS = 4


class AsyncLedger:
    """Awaitable access to a :class:`Ledger` (see the module docstring).

    ``AsyncLedger(ledger)`` borrows an open ledger (closing the facade leaves it open);
    :meth:`open` opens one and owns it. Method names, arguments and results are the
    :class:`Ledger`'s; see there for what each promises.
    """

    def __init__(self, ledger: Ledger, *, readers: int = READERS, owns: bool = False) -> None:
        #: The synchronous ledger underneath (for code that runs off the event loop).
        self.sync = ledger
        self._owns = owns
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="ledger-write")
        # An in-memory SQLite ledger is one shared connection, which two threads must never use
        # at once: everything then runs on the one writer thread.
        shared = _in_memory(ledger.url)
        self._readers = (
            self._writer
            if shared
            else ThreadPoolExecutor(max(1, readers), thread_name_prefix="ledger-read")
        )
        self._closed = False
        # A facade dropped without aclose() must not keep idle threads alive.
        for pool in (self._writer, self._readers):
            weakref.finalize(self, pool.shutdown, wait=False)

    @classmethod
    async def open(cls, url: str | None = None, *, clock: Clock | None = None) -> AsyncLedger:
        """Open (and migrate) the ledger at ``url`` off the loop; the facade owns it."""
        ledger = await asyncio.to_thread(Ledger.open, url, clock=clock)
        return cls(ledger, owns=True)

    async def aclose(self) -> None:
        """Let running calls finish, stop the threads, and close the ledger if owned."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        if self._readers is not self._writer:
            self._readers.shutdown(wait=True)
        if self._owns:
            self.sync.close()

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncLedger({self.sync!r})"

    @property
    def url(self) -> str:
        return self.sync.url

    @property
    def dialect(self) -> str:
        return self.sync.dialect

    @property
    def clock(self) -> Clock:
        return self.sync.clock

    async def _run(
        self, pool: ThreadPoolExecutor, fn: Callable[_P, _T], *args: _P.args, **kw: _P.kwargs
    ) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(fn, *args, **kw))

    async def _write(self, fn: Callable[_P, _T], *args: _P.args, **kw: _P.kwargs) -> _T:
        return await self._run(self._writer, fn, *args, **kw)

    async def _read(self, fn: Callable[_P, _T], *args: _P.args, **kw: _P.kwargs) -> _T:
        return await self._run(self._readers, fn, *args, **kw)

    # -- composites: a function of the sync ledger, written once for both faces -------------

    async def read(
        self, fn: Callable[Concatenate[Ledger, _P], _T], *args: _P.args, **kw: _P.kwargs
    ) -> _T:
        """``fn(ledger, *args, **kw)`` on a reader thread: a composite read (``status``'s pause
        flag, an expiry summary) that the CLI calls directly on a :class:`Ledger`."""
        return await self._read(fn, self.sync, *args, **kw)

    async def write(
        self, fn: Callable[Concatenate[Ledger, _P], _T], *args: _P.args, **kw: _P.kwargs
    ) -> _T:
        """``fn(ledger, *args, **kw)`` on the writer thread, after every write awaited before."""
        return await self._write(fn, self.sync, *args, **kw)

    # -- writes (one thread, in order) -----------------------------------------------------

    async def ensure_batch(self, name: str, *, download_dir: str | None = None) -> BatchRecord:
        return await self._write(self.sync.ensure_batch, name, download_dir=download_dir)

    async def add_tasks(self, batch: str, tasks: Sequence[NewTask]) -> AddResult:
        return await self._write(self.sync.add_tasks, batch, list(tasks))

    async def adopt(self, batch: str, product: str, task_id: str, *, family: str = "video") -> int:
        return await self._write(self.sync.adopt, batch, product, task_id, family=family)

    async def apply(self, obs: Observation) -> Change | None:
        """Pass one report through the one door (:meth:`Ledger.apply`)."""
        return await self._write(self.sync.apply, obs)

    async def apply_many(self, observations: Iterable[Observation]) -> list[Change]:
        """Pass many reports through the one door in one transaction."""
        return await self._write(self.sync.apply_many, list(observations))

    async def claim_due(
        self, now: float, *, owner: str, lease_seconds: float, limit: int = 1000
    ) -> list[TaskRecord]:
        return await self._write(
            self.sync.claim_due, now, owner=owner, lease_seconds=lease_seconds, limit=limit
        )

    async def claim_queued(
        self,
        now: float,
        *,
        owner: str,
        lease_seconds: float,
        family: str | None = None,
        limit: int = 100,
    ) -> list[TaskRecord]:
        return await self._write(
            self.sync.claim_queued,
            now,
            owner=owner,
            lease_seconds=lease_seconds,
            family=family,
            limit=limit,
        )

    async def claim_to_send(
        self,
        now: float,
        *,
        owner: str,
        lease_seconds: float,
        family: str,
        slot_limit: int | None,
        most: int,
    ) -> list[TaskRecord]:
        return await self._write(
            self.sync.claim_to_send,
            now,
            owner=owner,
            lease_seconds=lease_seconds,
            family=family,
            slot_limit=slot_limit,
            most=most,
        )

    async def claim_succeeded(
        self, local_ids: Iterable[int], now: float, *, owner: str, lease_seconds: float
    ) -> list[TaskRecord]:
        return await self._write(
            self.sync.claim_succeeded,
            list(local_ids),
            now,
            owner=owner,
            lease_seconds=lease_seconds,
        )

    async def renew(self, local_ids: Iterable[int], until: float, *, owner: str) -> list[int]:
        return await self._write(self.sync.renew, list(local_ids), until, owner=owner)

    async def release(self, local_ids: Iterable[int], *, owner: str) -> None:
        await self._write(self.sync.release, list(local_ids), owner=owner)

    async def schedule(self, looks: Iterable[tuple[int, float]]) -> None:
        await self._write(self.sync.schedule, list(looks))

    async def note_polled(self, local_ids: Iterable[int], at: float) -> None:
        await self._write(self.sync.note_polled, list(local_ids), at)

    async def mark_sending(self, local_ids: int | Iterable[int], at: float) -> SendClaim:
        """Mark tasks sending, checking budget caps in the same transaction."""
        ids = local_ids if isinstance(local_ids, int) else list(local_ids)
        return await self._write(self.sync.mark_sending, ids, at)

    async def set_cap(self, batch: str, max_units: Decimal | None) -> BatchBudget:
        return await self._write(self.sync.set_cap, batch, max_units)

    async def review_holds(self) -> int:
        return await self._write(self.sync.review_holds)

    async def set_stuck(self, local_id: int, stuck: bool, reason: str | None, at: float) -> bool:
        return await self._write(self.sync.set_stuck, local_id, stuck, reason, at)

    async def set_meta(self, key: str, value: str | None) -> None:
        await self._write(self.sync.set_meta, key, value)

    async def meta_default(self, key: str, value: str) -> str:
        return await self._write(self.sync.meta_default, key, value)

    async def observe_incidents(
        self, rules: Sequence[str], sightings: Sequence[Sighting], at: float
    ) -> tuple[list[int], list[int]]:
        return await self._write(self.sync.observe_incidents, list(rules), list(sightings), at)

    async def claim_incidents(
        self,
        now: float,
        *,
        owner: str,
        lease_seconds: float,
        cooldowns: dict[str, float | None],
        limit: int = 100,
    ) -> list[IncidentRecord]:
        return await self._write(
            self.sync.claim_incidents,
            now,
            owner=owner,
            lease_seconds=lease_seconds,
            cooldowns=dict(cooldowns),
            limit=limit,
        )

    async def finish_incident(
        self, incident_id: int, *, owner: str, at: float, owed: Sequence[str] = ()
    ) -> bool:
        return await self._write(
            self.sync.finish_incident, incident_id, owner=owner, at=at, owed=list(owed)
        )

    async def enable_outbox(self) -> None:
        await self._write(self.sync.enable_outbox)

    async def claim_outbound(
        self, now: float, *, owner: str, lease_seconds: float, limit: int = 100
    ) -> list[OutboundEvent]:
        return await self._write(
            self.sync.claim_outbound, now, owner=owner, lease_seconds=lease_seconds, limit=limit
        )

    async def outbound_delivered(self, event_ids: Iterable[int], *, owner: str) -> None:
        await self._write(self.sync.outbound_delivered, list(event_ids), owner=owner)

    async def outbound_failed(
        self, event_id: int, *, owner: str, next_at: float, error: str
    ) -> None:
        await self._write(
            self.sync.outbound_failed, event_id, owner=owner, next_at=next_at, error=error
        )

    async def add_alert(self, kind: str, message: str, at: float) -> None:
        await self._write(self.sync.add_alert, kind, message, at)

    async def clear_alerts(self, kind: str | None = None) -> None:
        await self._write(self.sync.clear_alerts, kind)

    async def record_download(
        self,
        local_id: int,
        index: int,
        *,
        url: str,
        path: str | None,
        size: int | None,
        sha256: str | None,
        state: str,
        error: str | None,
        at: float,
    ) -> None:
        await self._write(
            self.sync.record_download,
            local_id,
            index,
            url=url,
            path=path,
            size=size,
            sha256=sha256,
            state=state,
            error=error,
            at=at,
        )

    # -- reads (a pool; never behind a write) ----------------------------------------------

    async def batches(self) -> list[BatchRecord]:
        return await self._read(self.sync.batches)

    async def due(self, now: float, *, limit: int = 1000) -> list[TaskRecord]:
        return await self._read(self.sync.due, now, limit=limit)

    async def queued(self, *, family: str | None = None, limit: int = 100) -> list[TaskRecord]:
        return await self._read(self.sync.queued, family=family, limit=limit)

    async def active_count(self, family: str | None = None) -> int:
        return await self._read(self.sync.active_count, family)

    async def slots_in_use(self, family: str | None, now: float) -> int:
        return await self._read(self.sync.slots_in_use, family, now)

    async def task(self, ref: int | str) -> TaskRecord | None:
        return await self._read(self.sync.task, ref)

    async def tasks(
        self,
        *,
        status: LocalStatus | Iterable[LocalStatus] | None = None,
        batch: str | None = None,
        product: str | None = None,
        stuck: bool | None = None,
        search: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        order: str = "id",
    ) -> list[TaskRecord]:
        statuses = status if status is None or isinstance(status, LocalStatus) else list(status)
        return await self._read(
            self.sync.tasks,
            status=statuses,
            batch=batch,
            product=product,
            stuck=stuck,
            search=search,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
            order=order,
        )

    async def events(self, local_id: int) -> list[EventRecord]:
        return await self._read(self.sync.events, local_id)

    async def recent_events(
        self, *, limit: int = 50, after_id: int | None = None
    ) -> list[EventRecord]:
        return await self._read(self.sync.recent_events, limit=limit, after_id=after_id)

    async def counts(self, *, batch: str | None = None) -> dict[LocalStatus, int]:
        return await self._read(self.sync.counts, batch=batch)

    async def finishes(self, *, batch: str | None = None, since: float) -> tuple[int, float | None]:
        return await self._read(self.sync.finishes, batch=batch, since=since)

    async def durations(self, product: str, model: str | None, mode: str | None) -> DurationStats:
        return await self._read(self.sync.durations, product, model, mode)

    async def verify(self) -> list[str]:
        return await self._read(self.sync.verify)

    async def get_meta(self, key: str) -> str | None:
        return await self._read(self.sync.get_meta, key)

    async def alerts(self, *, active: bool = True) -> list[AlertRecord]:
        return await self._read(self.sync.alerts, active=active)

    async def budget(self, batch: str) -> BatchBudget | None:
        return await self._read(self.sync.budget, batch)

    async def held_count(self, *, batch: str | None = None) -> int:
        return await self._read(self.sync.held_count, batch=batch)

    async def downloads(self, local_id: int | None = None) -> list[DownloadRecord]:
        return await self._read(self.sync.downloads, local_id)

    async def incidents(
        self, *, rule: str | None = None, open_only: bool = False
    ) -> list[IncidentRecord]:
        return await self._read(self.sync.incidents, rule=rule, open_only=open_only)

    async def outbox_pending(self) -> tuple[int, float | None]:
        return await self._read(self.sync.outbox_pending)


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
