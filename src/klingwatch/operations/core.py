"""The operations: one object holding the ledger, the Kling client and the clock, with a method
for each thing a person, a script or an agent can ask of klingwatch.

An :class:`Operations` is made from the settings (:meth:`Operations.open`) or from parts already
open (tests, the server). Every method is async and reaches the ledger through its one async
boundary (:class:`~klingwatch.store.async_ledger.AsyncLedger`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx
from pydantic import SecretStr

from klingwatch.clock import Clock, RealClock, ScaledClock
from klingwatch.errors import ConfigurationError
from klingwatch.kling.client import KlingClient
from klingwatch.kling.errors import MissingCredentials, TaskNotFound, TasksStyleRefused
from klingwatch.kling.models import ApiStandard, Task
from klingwatch.kling.products import get_product
from klingwatch.kling.retry import RetryPolicy
from klingwatch.monitor import gates
from klingwatch.monitor.alerts import AlertWorker
from klingwatch.monitor.download_worker import DownloadWorker
from klingwatch.monitor.estimate import estimate_units
from klingwatch.monitor.notify import NOTIFY_HELP, Notifier, parse_targets
from klingwatch.monitor.observe import observe_task
from klingwatch.monitor.outbound import (
    EventDelivery,
    events_instance,
    events_secret,
    events_url,
    send_test_event,
)
from klingwatch.monitor.poller import PollSettings, SweepReport
from klingwatch.monitor.replica import replica_id
from klingwatch.monitor.retries import pick_retries, retry_task
from klingwatch.monitor.service import ChangeHook, Monitor, Worker
from klingwatch.monitor.stuck import StuckPolicy
from klingwatch.monitor.submitter import Submitter
from klingwatch.monitor.sweeps import SweepBudget
from klingwatch.operations import queries
from klingwatch.operations.batches import BatchOperations
from klingwatch.operations.queries import (
    StatusReport,
    TaskDetail,
    TaskPage,
    TaskQuery,
    WaitResult,
)
from klingwatch.operations.results import NotifyResult, ResumeResult, RetryResult, TrackResult
from klingwatch.operations.spend import SpendOperations, parse_cap
from klingwatch.settings import Settings
from klingwatch.store import AddResult, LocalStatus, NewTask, Source, TaskRecord
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.budget import format_units

__all__ = ["CALLBACK_TOKEN_META", "Operations", "client_from", "clock_from", "with_estimate"]

logger = logging.getLogger(__name__)

#: Ledger meta key keeping the generated callback token (when KLINGWATCH_CALLBACK_TOKEN is unset).
CALLBACK_TOKEN_META = "server.callback_token"
#: Legacy list pages ``track`` walks at most before reading the rest one by one.
TRACK_PAGES = 4
#: Tasks per legacy list page (Kling's maximum).
_PAGE = 500

SweepHook = Callable[[SweepReport], Awaitable[None] | None]


def clock_from(settings: Settings) -> Clock:
    """The wall clock, scaled by ``KLINGWATCH_TIME_SCALE`` when it is not 1."""
    return RealClock() if settings.time_scale == 1.0 else ScaledClock(settings.time_scale)


def client_from(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http_client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
) -> KlingClient:
    """The one place a Kling client is built from settings: their credentials, base URL, clock
    (``KLINGWATCH_TIME_SCALE``; ``clock`` overrides it) and request budget, passed explicitly
    (the library client itself reads nothing but its arguments and ``KLING_*``).

    ``http_client`` and ``retry`` are for ``doctor``'s one-shot checks (its own timeout, no
    retries).
    """
    return KlingClient(
        access_key=_reveal(settings.access_key),
        secret_key=_reveal(settings.secret_key),
        api_key=_reveal(settings.api_key),
        base_url=settings.api_base,
        clock=clock or clock_from(settings),
        requests_per_second=settings.requests_per_second,
        max_concurrency=settings.max_concurrency,
        http_client=http_client,
        retry=retry,
    )


def with_estimate(task: NewTask) -> NewTask:
    """``task`` with its unit estimate, made now unless it has one."""
    if task.units_estimated is not None:
        return task
    units = estimate_units(task.product, task.request)
    return replace(task, units_estimated=format_units(units))


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


class Operations(SpendOperations, BatchOperations):
    """What klingwatch can be asked to do (see the package docstring).

    ``client`` is ``None`` when no credentials are configured: reading and changing the ledger
    still works, anything that must ask Kling raises
    :class:`~klingwatch.kling.errors.MissingCredentials`.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        ledger: AsyncLedger,
        clock: Clock,
        client: KlingClient | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clock = clock
        self.client = client
        #: This process's name on the ledger's leases (``KLINGWATCH_REPLICA_ID``, else
        #: ``host:pid:random``): every engine and pass it runs works under it.
        self.owner = replica_id(settings.replica_id)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        db: str | None = None,
        client: bool = True,
        need_client: bool = False,
    ) -> AsyncIterator[Operations]:
        """Operations on the settings' ledger (or ``db``) and, with ``client`` and credentials,
        a Kling client; everything is closed on exit. Without credentials there is no client
        (see the class docstring), unless ``need_client``: then
        :class:`~klingwatch.kling.errors.MissingCredentials` is raised before anything is
        opened (no ledger file is made for a command that cannot run)."""
        if need_client and not settings.has_credentials:
            raise MissingCredentials()
        clock = clock_from(settings)
        kling = client_from(settings, clock=clock) if client and settings.has_credentials else None
        try:
            ledger = await AsyncLedger.open(db or settings.db, clock=clock)
            try:
                if settings.events_url:
                    # Before anything can change a status: every change from now on is owed.
                    await ledger.enable_outbox()
                yield cls(settings=settings, ledger=ledger, clock=clock, client=kling)
            finally:
                await ledger.aclose()
        finally:
            if kling is not None:
                await kling.aclose()

    def kling(self) -> KlingClient:
        """The Kling client, or :class:`MissingCredentials` when there is none."""
        if self.client is None:
            raise MissingCredentials()
        return self.client

    # -- the engine ----------------------------------------------------------------------------
    def engine(
        self,
        *,
        batch: str | None = None,
        submit: bool = True,
        downloads: bool = True,
        callback_url: str | None = None,
        until_done: bool = False,
        done_batch: str | None = None,
        stop_on_pause: bool = False,
        on_change: ChangeHook | None = None,
        on_sweep: SweepHook | None = None,
        workers: Sequence[Worker] = (),
    ) -> Monitor:
        """The engine as the settings configure it: the poller, a submitter (unless ``submit``
        is false), a download worker (batches with a download folder, or all with
        ``KLINGWATCH_DOWNLOAD_DIR``), alerts (``KLINGWATCH_NOTIFY``), outbound events
        (``KLINGWATCH_EVENTS_URL``) and any further ``workers``.

        ``batch`` narrows what the poller reads (and so sends nothing: slots held by other
        batches could never be seen to free). ``until_done`` stops once nothing is in flight or
        waiting, in ``done_batch`` if given; ``stop_on_pause`` stops as soon as Kling pauses
        sending. Signals are the caller's (the CLI's ``run_engine``, uvicorn for ``serve``).
        """
        client = self.kling()
        submitter = None
        if submit and batch is None:
            submitter = Submitter.from_settings(
                self.settings,
                client=client,
                ledger=self.ledger,
                clock=self.clock,
                callback_url=callback_url,
                owner=self.owner,
            )
        extra: list[Worker] = []
        if downloads:
            extra.append(
                DownloadWorker.from_settings(
                    self.settings,
                    ledger=self.ledger,
                    clock=self.clock,
                    batch=batch or done_batch,
                    owner=self.owner,
                )
            )
        if self.settings.notify:
            extra.append(
                AlertWorker.from_settings(
                    self.settings, ledger=self.ledger, clock=self.clock, owner=self.owner
                )
            )
        if self.settings.events_url:
            extra.append(
                EventDelivery.from_settings(
                    self.settings, ledger=self.ledger, clock=self.clock, owner=self.owner
                )
            )
        return Monitor(
            client=client,
            ledger=self.ledger,
            clock=self.clock,
            batch=batch,
            poll=self.poll_settings(),
            stuck=StuckPolicy(threshold=self.settings.stuck_after),
            submitter=submitter,
            workers=[*extra, *workers],
            on_change=on_change,
            on_sweep=on_sweep,
            until_done=until_done,
            done_batch=done_batch,
            stop_on_pause=stop_on_pause,
            handle_signals=False,
        )

    def poll_settings(self) -> PollSettings:
        """How the engine's poller reads: the sweep budget from the settings; on PostgreSQL,
        where replicas may share the ledger, due tasks are leased to this replica so that two
        never read one task in one sweep (on SQLite, one file on one machine, the lease would be
        a write per sweep for nothing)."""
        s = self.settings
        shared = self.ledger.dialect == "postgresql"
        minimum = min(s.sweep_min, s.sweep_max)
        return PollSettings(
            owner=self.owner if shared else None,
            lease_seconds=s.lease_seconds,
            sweep=SweepBudget(
                base=s.sweep_interval,
                waiting=s.sweep_waiting,
                minimum=minimum,
                maximum=s.sweep_max,
            ),
        )

    async def send_once(self) -> Submitter:
        """One submitter pass: send what the free slots allow now (``submit`` without
        ``--wait``); the submitter is returned for its counters."""
        submitter = Submitter.from_settings(
            self.settings,
            client=self.kling(),
            ledger=self.ledger,
            clock=self.clock,
            owner=self.owner,
        )
        await submitter.run_once()
        return submitter

    # -- intents ------------------------------------------------------------------------------
    async def queue(
        self,
        batch: str,
        tasks: Sequence[NewTask],
        *,
        download_dir: Path | None = None,
        max_units: Decimal | int | str | None = None,
    ) -> AddResult:
        """Commit ``tasks`` to ``batch`` as ``queued`` (idempotent by external id), recording
        ``download_dir`` for the batch when given (the ledger keeps it absolute), each with its
        unit estimate (:func:`~klingwatch.monitor.estimate.estimate_units`).

        ``max_units`` sets the batch's budget cap (before any task is added, so a running
        engine never sends one uncapped): no create whose estimate would take the batch's sent
        estimates past it is sent (:meth:`set_cap` changes it later).
        """
        cap = parse_cap(max_units)
        folder = str(download_dir) if download_dir is not None else None
        await self.ledger.ensure_batch(batch, download_dir=folder)
        if cap is not None:
            await self.ledger.set_cap(batch, cap)
        return await self.ledger.add_tasks(batch, [with_estimate(t) for t in tasks])

    async def track(self, product: str, task_ids: Sequence[str], *, batch: str) -> TrackResult:
        """Adopt tasks created elsewhere: each is read on Kling (to check that it exists and
        record where it stands) and kept in ``batch``, where the engine follows it.

        Reads many per request: ``GET /tasks?task_ids=`` (20 a request) with an API key, else
        legacy list pages (500 a request, at most :data:`TRACK_PAGES`), then single reads for
        what the pages did not hold. Tasks already in the ledger are not added twice.
        """
        p = get_product(product)
        wanted = list(dict.fromkeys(i.strip() for i in task_ids if i.strip()))
        client = self.client
        if client is None:
            # No credentials (a server showing the ledger only): adopted as given, unverified;
            # an engine with credentials reads them later.
            found: dict[str, Task | None] = dict.fromkeys(wanted)
            before = 0
        else:
            before = client.stats.requests
            found = dict(await self._read_many(p.name, p.standard, wanted))
        missing = [i for i in wanted if i not in found]
        tracked: list[TaskRecord] = []
        if found:
            await self.ledger.ensure_batch(batch)
        for task_id in wanted:
            if task_id not in found:
                continue
            task = found[task_id]
            local_id = await self.ledger.adopt(batch, p.name, task_id, family=p.family.value)
            if task is not None:
                await self.ledger.apply(
                    observe_task(task, source=Source.GET, at=self.clock.time(), local_id=local_id)
                )
            record = await self.ledger.task(local_id)
            assert record is not None
            tracked.append(record)
            logger.info("tracking Kling task %s as #%d", task_id, local_id)
        requests = 0 if client is None else client.stats.requests - before
        return TrackResult(tracked, missing, requests)

    async def _read_many(
        self, product: str, standard: ApiStandard, ids: list[str]
    ) -> dict[str, Task]:
        client = self.kling()
        found: dict[str, Task] = {}
        if client.tasks_api:
            with contextlib.suppress(TasksStyleRefused):
                found = await client.get_many(ids)
                return found
        if standard is ApiStandard.LEGACY and len(ids) > 2:
            left = set(ids)
            for page in range(1, min(TRACK_PAGES, len(ids) // _PAGE + 2) + 1):
                tasks = await client.list_page(product, page, _PAGE)
                for task in tasks:
                    if task.id in left:
                        found[task.id] = task
                        left.discard(task.id)
                if not left or len(tasks) < _PAGE:
                    break
        for task_id in (i for i in ids if i not in found):
            with contextlib.suppress(TaskNotFound):
                found[task_id] = await client.get(product, task_id)
        return found

    async def retry(
        self,
        *,
        batch: str | None = None,
        failed: bool = False,
        rejected: bool = False,
        ids: Sequence[str] = (),
        force: bool = False,
        how_to_force: str = "--force",
        dry_run: bool = False,
    ) -> RetryResult:
        """Queue failed / rejected tasks of ``batch`` and the tasks named in ``ids`` again, as
        new linked tasks, under the one retry rule (:func:`~klingwatch.monitor.retries.
        check_retry`): raises :class:`~klingwatch.monitor.retries.RetryRefused`, queuing
        nothing, for a task in flight or a succeeded one without ``force``.

        With ``dry_run`` nothing is written: :attr:`RetryResult.would_retry` lists what would
        be queued again."""
        todo, skipped = await self.ledger.read(
            pick_retries,
            batch=batch,
            failed=failed,
            rejected=rejected,
            ids=list(ids),
            force=force,
            how_to_force=how_to_force,
        )
        if dry_run:
            return RetryResult(skipped=skipped, would_retry=todo)
        queued = []
        for old in todo:
            new = await self.ledger.write(retry_task, old, force=force, how_to_force=how_to_force)
            queued.append((old, new))
        return RetryResult(queued, skipped)

    # -- reading -------------------------------------------------------------------------------
    async def list_tasks(self, q: TaskQuery) -> TaskPage:
        """One page of the tasks matching ``q`` (the filters of ``GET /api/tasks``)."""
        return await queries.list_tasks(self.ledger, q)

    async def status(self, batch: str | None = None, *, max_batches: int = 50) -> StatusReport:
        """Where everything (or ``batch``) stands: counts, stuck, the oldest in flight, ETA,
        expiring results, alerts; and each of the newest ``max_batches`` batches' counts and
        ETA (:mod:`klingwatch.monitor.eta`). A batch with no tasks is simply empty."""
        return await queries.status_report(
            self.ledger,
            batch,
            warn_days=self.settings.expiry_warn_days,
            max_batches=max_batches,
        )

    async def show_task(self, name_or_id: str) -> TaskDetail:
        """One task by local id, ``external_task_id`` or Kling ``task_id``, with its timeline,
        files and retry lineage; :class:`~klingwatch.store.errors.UnknownTask` when absent."""
        return await queries.show_task(self.ledger, name_or_id)

    async def stuck(self, batch: str | None = None) -> list[TaskRecord]:
        """Active tasks the engine marked stuck (with ``stuck_reason``), oldest first."""
        return await self.ledger.tasks(stuck=True, batch=batch)

    async def wait_for(
        self,
        names: Sequence[str],
        # Not asyncio.timeout: at the deadline the answer is what is still running, not an error.
        timeout: float = 60.0,  # noqa: ASYNC109
        *,
        interval: float = 1.0,
    ) -> WaitResult:
        """Wait until every task named (local id, external or Kling id) is final, or
        ``timeout`` wall-clock seconds have passed (at most
        :data:`~klingwatch.operations.queries.MAX_WAIT_SECONDS`; more is refused); the tasks as
        last seen either way.

        The ledger is read every ``interval`` seconds. With a Kling client each interval also
        runs one engine pass (poll what is due; send what is queued, as slots allow, when a
        task waited for is still queued; no downloads), so the wait ends even when no ``serve``
        or ``watch`` follows the tasks; beside a running engine a pass only reads a little more.
        Raises :class:`~klingwatch.store.errors.UnknownTask` for a name the ledger lacks.
        """
        engine = None
        if self.client is not None:

            def engine(send: bool) -> Monitor:
                return self.engine(submit=send, downloads=False)

        return await queries.wait_for(self.ledger, names, timeout, interval=interval, engine=engine)

    # -- sending -------------------------------------------------------------------------------
    async def pause_state(self) -> gates.PauseState | None:
        """Why sending is paused, or ``None``."""
        return await self.ledger.read(gates.pause_state)

    async def resume(self, *, forget_slots: bool = False) -> ResumeResult:
        """Clear the pause on submissions (and its alert); with ``forget_slots``, also the
        concurrency limits learned from 1303 answers (after a pack upgrade)."""
        was = await self.ledger.write(gates.resume)
        forgotten = await self.ledger.write(gates.forget_slots) if forget_slots else {}
        queued = (await self.ledger.counts()).get(LocalStatus.QUEUED, 0)
        return ResumeResult(was, forgotten, queued)

    # -- callbacks ----------------------------------------------------------------------------
    async def callback_token(self) -> str:
        """The secret path segment of the callback URL.

        ``KLINGWATCH_CALLBACK_TOKEN`` when set; otherwise one generated on first use and kept in
        the ledger, so the URL stays valid across restarts (tasks in flight carry it) and every
        replica sharing the ledger accepts it.
        """
        if self.settings.callback_token is not None:
            return self.settings.callback_token.get_secret_value()
        token = await self.ledger.get_meta(CALLBACK_TOKEN_META)
        if not token:
            # Replicas starting together may each make one: the first stored is everyone's.
            token = await self.ledger.meta_default(CALLBACK_TOKEN_META, secrets.token_urlsafe(24))
        return token

    async def callback_url(self) -> str | None:
        """``<public-url>/callbacks/kling/<token>``, or ``None`` without a public URL."""
        if not self.settings.public_url:
            return None
        base = self.settings.public_url.rstrip("/")
        return f"{base}/callbacks/kling/{await self.callback_token()}"

    # -- alerts and outbound events ----------------------------------------------------------
    async def notify_test(self) -> list[NotifyResult]:
        """Send one test message to every ``KLINGWATCH_NOTIFY`` URL and one signed test event
        to ``KLINGWATCH_EVENTS_URL``; whether each went. Raises
        :class:`~klingwatch.errors.ConfigurationError` when neither is set, or for a URL
        apprise does not understand (nothing is sent then)."""
        targets = parse_targets(self.settings.notify)
        url = self.settings.events_url
        if not targets and not url:
            raise ConfigurationError(
                f"nothing to notify: {NOTIFY_HELP}; and/or set KLINGWATCH_EVENTS_URL to "
                "receive every status change as a signed JSON event"
            )
        out: list[NotifyResult] = []
        if targets:
            went = await Notifier(targets).send(
                "klingwatch: test message",
                "This is a test from `klingwatch notify --test`: alerts will arrive here.",
            )
            out.extend(
                NotifyResult(
                    "alerts", t.label, went[t.key], None if went[t.key] else "not delivered"
                )
                for t in targets
            )
        if url:
            problem = await send_test_event(
                events_url(url),
                secret=await self.events_secret(),
                instance=await events_instance(self.ledger),
                at=self.clock.time(),
            )
            out.append(NotifyResult("events", url, problem is None, problem))
        return out

    async def events_secret(self) -> str:
        """The secret outbound events are signed with: ``KLINGWATCH_EVENTS_SECRET``, else the
        one generated for this ledger (made now if there is none yet)."""
        configured = self.settings.events_secret
        return await events_secret(
            self.ledger, None if configured is None else configured.get_secret_value()
        )
