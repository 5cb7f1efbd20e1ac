"""The engine: one loop that keeps every task's status true, shaped like arq's ``Worker``.

:class:`Monitor` takes keyword-only settings, runs sweeps in :meth:`Monitor.run` until stopped
(or, with ``until_done``, until no task is in flight or waiting), and offers
:meth:`Monitor.run_once` for tests. One iteration::

    poller.sweep()        read every due task (batched), apply, judge stuck, reschedule
    worker.run_once()     each extra worker in order: the submitter, downloads, ...
    on_change(changes)    the CLI prints them, the server pushes them
    on_sweep(report)      every iteration (a live view refreshes)
    sleep                 until the next look is due (or idle_interval), or until stopped

Extension points: a worker is anything with ``async run_once() -> Sequence[Change]`` and
``busy() -> bool`` (:class:`Worker`), and optionally ``next_due() -> float | None`` (the clock
time it next has something to do, so the engine wakes for it), ``async start()`` (run once
before the first iteration) and ``async drain()`` (run once when :meth:`Monitor.run` ends, so
work started in the background, such as an alert or an outbound event, gets out before the
process exits). The submitter is passed as
``submitter=`` (it runs first among the workers, right after the sweep that may have freed
slots, and ``queued`` tasks only keep ``until_done`` waiting when there is one); other workers
(downloads, alerts) as ``workers=[...]``.

SIGINT/SIGTERM (when ``handle_signals``) ask the loop to stop: the current iteration finishes (the
ledger is written in whole transactions, so it stays consistent), then :meth:`run` returns. A
second signal is not caught specially; the process can always be killed, and a restarted engine
carries on from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from klingwatch.clock import Clock
from klingwatch.kling.client import KlingClient
from klingwatch.kling.pacing import CadencePolicy
from klingwatch.monitor import gates
from klingwatch.monitor.cadence import Cadence
from klingwatch.monitor.create_policy import CreatePolicy, SubmitterStats
from klingwatch.monitor.learned import LearnedTimings
from klingwatch.monitor.poller import Poller, PollSettings, SweepReport
from klingwatch.monitor.recovery import RecoveryWorker
from klingwatch.monitor.slots import Slots
from klingwatch.monitor.stuck import StuckDetector, StuckPolicy
from klingwatch.store import ACTIVE_STATUSES, Change, LocalStatus
from klingwatch.store.async_ledger import AsyncLedger

__all__ = ["ChangeHook", "Monitor", "Worker"]

log = logging.getLogger(__name__)

#: Called with the changes of each iteration (only when there are some).
ChangeHook = Callable[[list[Change]], Awaitable[None]]


@runtime_checkable
class Worker(Protocol):
    """Something the engine runs once per iteration, after the sweep."""

    async def run_once(self) -> Sequence[Change]:
        """Do one round of work; return the status changes it caused (for ``on_change``)."""
        ...

    def busy(self) -> bool:
        """True while it has work of its own left (keeps ``until_done`` running)."""
        ...


class Monitor:
    """Watches the ledger's active tasks on Kling until stopped (see the module docstring)."""

    def __init__(
        self,
        *,
        client: KlingClient,
        ledger: AsyncLedger,
        clock: Clock | None = None,
        batch: str | None = None,
        cadence: CadencePolicy | None = None,
        poll: PollSettings | None = None,
        stuck: StuckPolicy | None = None,
        submitter: Worker | None = None,
        workers: Sequence[Worker] = (),
        on_change: ChangeHook | None = None,
        on_sweep: Callable[[SweepReport], Awaitable[None] | None] | None = None,
        until_done: bool = False,
        done_batch: str | None = None,
        stop_on_pause: bool = False,
        idle_interval: float = 5.0,
        handle_signals: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.clock: Clock = clock or client.clock
        self.batch = batch
        self.submitter = submitter
        self.workers: list[Worker] = [*([submitter] if submitter else []), *workers]
        self.on_change = on_change
        self.on_sweep = on_sweep
        self.until_done = until_done
        #: With ``until_done``: the batch whose end ends the run (default: ``batch``, else all).
        self.done_batch = done_batch if done_batch is not None else batch
        #: Stop as soon as Kling pauses sending (``submit --wait``: nothing more will be sent).
        self.stop_on_pause = stop_on_pause
        self.idle_interval = idle_interval
        self.handle_signals = handle_signals
        self.cadence = Cadence(
            policy=cadence,
            scale=self.clock.scale,
            learned=LearnedTimings(ledger),
            rng=rng,
        )
        poll = poll or PollSettings()
        if submitter is None:
            # Tasks whose create answer was lost are looked up by external id; a submitter does
            # that itself (it must know which tasks it may send again).
            policy = CreatePolicy(
                ledger=ledger, clock=self.clock, slots=Slots(ledger), stats=SubmitterStats()
            )
            self.workers.append(
                RecoveryWorker(client=client, ledger=ledger, clock=self.clock, policy=policy)
            )
        self.poller = Poller(
            client=client,
            ledger=ledger,
            clock=self.clock,
            cadence=self.cadence,
            settings=poll,
            stuck=StuckDetector(self.cadence, stuck),
            batch=batch,
        )
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        # counters, shown in __repr__
        self.iterations = 0
        self.sweeps = 0
        self.requests = 0
        self.looks = 0
        self.changes = 0
        self.errors = 0
        self.last_report: SweepReport | None = None

    def __repr__(self) -> str:
        return (
            f"<Monitor batch={self.batch!r} iterations={self.iterations} sweeps={self.sweeps} "
            f"requests={self.requests} looks={self.looks} changes={self.changes} "
            f"errors={self.errors}{' stopping' if self._stop.is_set() else ''}>"
        )

    # -- control --------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to return after the current iteration."""
        self._stop.set()

    def wake(self) -> None:
        """Cut the current pause short: something outside the loop (a callback reporting a
        task's end, which frees a slot) may have given the submitter work."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def done(self) -> bool:
        """No task in flight (in :attr:`done_batch`), none waiting for a submitter (tasks a
        budget cap holds wait for a person, not for it), and every worker idle."""
        counts = await self.ledger.counts(batch=self.done_batch)
        if any(counts.get(s, 0) for s in ACTIVE_STATUSES):
            return False
        queued = counts.get(LocalStatus.QUEUED, 0)
        if (
            self.submitter is not None
            and queued
            and queued > await self.ledger.held_count(batch=self.done_batch)
        ):
            return False
        return not any(worker.busy() for worker in self.workers)

    # -- the loop -------------------------------------------------------------------------
    async def run_once(self) -> list[Change]:
        """One iteration: a sweep, then every worker; returns (and reports) all changes."""
        self.iterations += 1
        report = await self.poller.sweep()
        self.last_report = report
        if report.due:
            self.sweeps += 1
        self.requests += report.requests
        self.looks += report.looked
        self.errors += report.errors
        changes = list(report.changes)
        for worker in self.workers:
            changes.extend(await worker.run_once())
        self.changes += sum(1 for c in changes if c.status_changed)
        if changes and self.on_change is not None:
            await self.on_change(changes)
        if self.on_sweep is not None:
            outcome = self.on_sweep(report)
            if inspect.isawaitable(outcome):
                await outcome
        return changes

    async def run(self) -> None:
        """Run iterations until :meth:`stop` (or a signal), or until done with ``until_done``."""
        with self._signals():
            log.info("engine started: %r", self)
            for worker in self.workers:
                await _call_optional(worker, "start")
            try:
                await self._loop()
            finally:
                for worker in self.workers:
                    await _call_optional(worker, "drain")
            log.info("engine stopped: %r", self)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            changes = await self.run_once()
            if self.until_done and await self.done():
                break
            if self.stop_on_pause and await self.ledger.read(gates.pause_state) is not None:
                log.info("sending is paused: stopping (%r)", self)
                break
            if self._stop.is_set():
                break
            await self._pause(bool(changes))

    async def _pause(self, busy: bool) -> None:
        now = self.clock.time()
        wake = now + self.clock.scaled(self.idle_interval)
        for next_due in (await self.poller.next_due(), *(_next_due(w) for w in self.workers)):
            if next_due is not None:
                wake = min(wake, max(next_due, now))
        if busy and self.workers:
            # Something just moved: a submitter may have a freed slot to fill.
            wake = min(wake, now + self.cadence.policy.floor)
        delay = max(wake - now, 0.0) / self.clock.scale
        await self._sleep(delay)

    async def _sleep(self, nominal: float) -> None:
        """Sleep ``nominal`` seconds on the clock, waking early when stopped or woken."""
        sleeper = asyncio.ensure_future(self.clock.sleep(nominal))
        stopper = asyncio.ensure_future(self._stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, stopper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._wake.clear()
            for fut in (sleeper, stopper, waker):
                fut.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fut

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM stop the loop gracefully (main thread of a Unix event loop only)."""
        installed: list[signal.Signals] = []
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig)
                except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                    continue
                installed.append(sig)
        try:
            yield
        finally:
            if installed:
                loop = asyncio.get_running_loop()
                for sig in installed:
                    loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("%s: finishing the current sweep, then stopping", sig.name)
        self.stop()


async def _call_optional(worker: Worker, name: str) -> None:
    method = getattr(worker, name, None)
    if callable(method):
        outcome = method()
        if inspect.isawaitable(outcome):
            await outcome


def _next_due(worker: Worker) -> float | None:
    next_due = getattr(worker, "next_due", None)
    return next_due() if callable(next_due) else None
