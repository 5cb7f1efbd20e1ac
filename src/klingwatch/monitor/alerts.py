"""Alerts inside the engine: a :class:`~klingwatch.monitor.service.Worker` that tells people.

Every ``interval`` (nominal seconds, scaled by the clock like every engine timing, but never
more often than every :data:`MIN_ROUND` seconds) :class:`AlertWorker` runs one round in the
background, never holding up the engine's iteration:

1. read the ledger (:func:`~klingwatch.monitor.alert_rules.gather`) and run the pure rules
   (:func:`~klingwatch.monitor.alert_rules.evaluate`);
2. record what they found as incidents (:meth:`Ledger.observe_incidents`): new ones open,
   cleared ones close;
3. claim the incidents owed a message (:meth:`Ledger.claim_incidents`: atomic, so replicas on one
   PostgreSQL send one message per incident) and send each with the
   :class:`~klingwatch.monitor.notify.Notifier` (more than :data:`DIGEST_OVER` of one rule at
   once go as one digest); a target that failed stays owed and is tried again on the next
   round.

Cool-downs and the claim's lease are *not* scaled by ``KLINGWATCH_TIME_SCALE``: they measure a
person's time (how often to remind someone; a send that takes a while must not be sent again by
another replica), which a simulation does not speed up.

When the engine stops (``submit --wait`` done, or paused by Kling) :meth:`AlertWorker.drain` runs
one last round, so a batch's summary or the pause that ended the run is still told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from klingwatch.clock import Clock
from klingwatch.monitor.alert_rules import RULES, AlertSettings, evaluate, gather
from klingwatch.monitor.notify import Notifier
from klingwatch.monitor.replica import replica_id
from klingwatch.settings import Settings
from klingwatch.store import Change
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.incidents import IncidentRecord

__all__ = ["DIGEST_OVER", "MIN_ROUND", "SINCE_META", "AlertWorker"]

logger = logging.getLogger(__name__)

#: Ledger meta key: when alerts first watched this ledger (older batch ends are not announced).
SINCE_META = "alerts.since"
#: More incidents of one rule than this owed in one round are told in one digest message (an
#: outage that sticks 500 tasks is one message listing them, not 500 messages).
DIGEST_OVER = 5
#: Clock seconds between rounds at the least (a scaled simulation must not read the ledger
#: many times a second).
MIN_ROUND = 1.0
#: Incidents a digest names before "and N more".
_DIGEST_LINES = 30


class AlertWorker:
    """Evaluates the alert rules and sends what is owed (see the module docstring)."""

    def __init__(
        self,
        ledger: AsyncLedger,
        *,
        clock: Clock,
        notifier: Notifier,
        settings: AlertSettings | None = None,
        interval: float = 30.0,
        lease: float = 300.0,
        drain_timeout: float = 10.0,
        rules: Sequence[str] = tuple(RULES),
        digest_over: int = DIGEST_OVER,
        owner: str | None = None,
    ) -> None:
        self.ledger = ledger
        self.clock = clock
        self.notifier = notifier
        self.settings = settings or AlertSettings()
        self.interval = interval
        self.lease = lease
        self.drain_timeout = drain_timeout
        self.rules = list(rules)
        self.digest_over = digest_over
        self.owner = owner or f"{replica_id()}:alerts"
        self._round: asyncio.Task[None] | None = None
        self._next_round = float("-inf")
        self._since: float | None = None
        # counters, shown in __repr__
        self.rounds = self.opened = self.closed = self.messages = self.undelivered = 0
        self.last_error: BaseException | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, ledger: AsyncLedger, clock: Clock, owner: str | None = None
    ) -> AlertWorker:
        """A worker sending to ``KLINGWATCH_NOTIFY`` with the thresholds of the settings."""
        return cls(
            ledger,
            clock=clock,
            notifier=Notifier.from_spec(settings.notify),
            settings=AlertSettings.from_settings(settings),
            interval=settings.alert_interval,
            owner=owner,
        )

    def __repr__(self) -> str:
        return (
            f"<AlertWorker rounds={self.rounds} opened={self.opened} closed={self.closed} "
            f"messages={self.messages} undelivered={self.undelivered}"
            f"{' running' if self.busy() else ''}>"
        )

    # -- the Worker protocol ------------------------------------------------------------------
    async def run_once(self) -> Sequence[Change]:
        """Start a round when one is due (never waits for it); alerts change no task."""
        now = self.clock.time()
        if not self.busy() and now >= self._next_round:
            self._next_round = now + max(self.clock.scaled(self.interval), MIN_ROUND)
            self._round = asyncio.create_task(self._guarded_round(), name="alerts")
        return []

    def busy(self) -> bool:
        return self._round is not None and not self._round.done()

    def next_due(self) -> float | None:
        return self._next_round

    async def drain(self) -> None:
        """Finish the running round, then run one more (what the engine's last iteration
        changed); at most ``drain_timeout`` seconds, then what is owed waits for the next run."""
        try:
            async with asyncio.timeout(self.drain_timeout):
                if self._round is not None:
                    await self._round
                await self._guarded_round()
        except TimeoutError:
            logger.warning("alerts: the last round did not finish in time; it is kept owed")
        finally:
            if self._round is not None and not self._round.done():
                self._round.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._round

    # -- one round ----------------------------------------------------------------------------
    async def run_round(self) -> None:
        """Evaluate, record, claim and send (raises what the ledger raises)."""
        now = self.clock.time()
        if self._since is None:
            self._since = float(await self.ledger.meta_default(SINCE_META, repr(now)))
        since = self._since
        facts = await self.ledger.read(
            gather, now, self.settings, since=since, scale=self.clock.scale
        )
        sightings = evaluate(facts, self.settings, self.rules)
        opened, closed = await self.ledger.observe_incidents(self.rules, sightings, now)
        self.opened += len(opened)
        self.closed += len(closed)
        cooldowns = {r: c for r, c in self.settings.cooldowns.items() if r in self.rules}
        owed = await self.ledger.claim_incidents(
            now, owner=self.owner, lease_seconds=self.lease, cooldowns=cooldowns
        )
        for group in _digests(owed, self.digest_over):
            first = group[0]
            only = None if first.pending_targets is None else set(first.pending_targets)
            title, body = _message(group)
            went = await self.notifier.send(title, body, only=only)
            left = [key for key, ok in went.items() if not ok]
            self.messages += len(went) - len(left)
            self.undelivered += len(left)
            for incident in group:
                await self.ledger.finish_incident(
                    incident.id, owner=self.owner, at=self.clock.time(), owed=left
                )
        self.rounds += 1

    async def _guarded_round(self) -> None:
        try:
            await self.run_round()
        except Exception as exc:  # the ledger busy, a bug in a rule: the engine carries on
            self.last_error = exc
            logger.warning("alerts: round failed (%s); trying again next round", exc, exc_info=True)


def _digests(owed: Sequence[IncidentRecord], over: int) -> list[list[IncidentRecord]]:
    """The messages of one round: each incident alone, except that more than ``over`` of one
    rule (owed to the same targets) make one digest."""
    groups: dict[tuple[str, tuple[str, ...] | None], list[IncidentRecord]] = {}
    for incident in owed:
        targets = None if incident.pending_targets is None else tuple(incident.pending_targets)
        groups.setdefault((incident.rule, targets), []).append(incident)
    out: list[list[IncidentRecord]] = []
    for group in groups.values():
        out.extend([group] if len(group) > over else [[i] for i in group])
    return out


def _message(group: Sequence[IncidentRecord]) -> tuple[str, str]:
    """Title and body: the incident's own, or a digest with the first line of each."""
    if len(group) == 1:
        return group[0].title, group[0].message
    names = [i.message.partition("\n")[0] for i in group[:_DIGEST_LINES]]
    more = len(group) - len(names)
    lines = [f"- {name}" for name in names] + ([f"... and {more} more"] if more else [])
    return f"klingwatch: {len(group)} {group[0].rule} alerts", "\n".join(lines)
