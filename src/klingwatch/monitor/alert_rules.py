"""The alert rules: pure functions from what the ledger says to the incidents that are open now.

:func:`gather` reads the ledger once per round into :class:`Facts`; each rule is a pure function
``(Facts, AlertSettings) -> list[Sighting]`` (one sighting per incident: a rule and a subject),
so every rule is tested without a database or a clock. The rules, their subjects and the
settings that tune them:

=================  ==================  ===========================================================
rule               subject             fires while
=================  ==================  ===========================================================
stuck              external task id    the engine flags the task stuck (past its learned p99 or
                                       ``KLINGWATCH_STUCK_AFTER``: :mod:`klingwatch.monitor.stuck`)
failure_ratio      batch               at least ``failure_min_finished`` of the batch's tasks
                                       finished and over ``failure_percent`` % of those failed or
                                       were rejected, while the batch runs (or within its
                                       cool-down after it ended, so a burst at the very end is
                                       told once too)
paused             ``submissions``     Kling paused sending (1100/1101 arrears, 1102 pack
                                       exhausted, 1103, 1304 IP, refused credentials)
callbacks_silent   ``callbacks``       within ``callbacks_window``, ``callbacks_min_polled`` tasks
                                       sent with a callback URL were seen finished by polling,
                                       none by a callback
results_expiring   batch               a succeeded task's results are not downloaded and Kling
                                       deletes them within ``KLINGWATCH_EXPIRY_WARN_DAYS``
batch_finished     batch               every task of the batch is final (told once; a batch that
                                       finished before alerts first ran is not announced)
=================  ==================  ===========================================================

Each rule but ``batch_finished`` has a cool-down: an incident still open that long after its
last message is told again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from klingwatch.clock import format_duration
from klingwatch.monitor import gates
from klingwatch.monitor.expiry import collection, expires_at, format_when
from klingwatch.settings import Settings
from klingwatch.store import Ledger, LocalStatus, Source, TaskRecord
from klingwatch.store.incidents import Sighting

__all__ = [
    "BATCH_FINISHED",
    "CALLBACKS_SILENT",
    "FAILURE_RATIO",
    "PAUSED",
    "RESULTS_EXPIRING",
    "RULES",
    "STUCK",
    "AlertSettings",
    "BatchFacts",
    "Facts",
    "evaluate",
    "gather",
]

STUCK = "stuck"
FAILURE_RATIO = "failure_ratio"
PAUSED = "paused"
CALLBACKS_SILENT = "callbacks_silent"
RESULTS_EXPIRING = "results_expiring"
BATCH_FINISHED = "batch_finished"

_PAUSE_MEANING = {
    1100: "the account is abnormal",
    1101: "the account is in arrears",
    1102: "the resource pack is exhausted or expired",
    1103: "no permission for this resource",
    1304: "this IP is not on the account's whitelist",
}
_POLLED = (Source.GET, Source.LIST, Source.RECOVERY)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Thresholds and cool-downs. ``callbacks_window`` is nominal seconds (scaled like every
    engine timing); cool-downs are wall-clock seconds, never scaled (a person's time); ``None``:
    told once."""

    failure_percent: float = 20.0
    failure_min_finished: int = 10
    callbacks_window: float = 1800.0
    callbacks_min_polled: int = 5
    expiry_warn_days: float = 5.0
    #: ``{public_url}/batches/{name}`` links, when the dashboard has a public address
    public_url: str | None = None
    cooldowns: dict[str, float | None] = field(
        default_factory=lambda: {
            STUCK: 6 * 3600.0,
            FAILURE_RATIO: 6 * 3600.0,
            PAUSED: 6 * 3600.0,
            CALLBACKS_SILENT: 6 * 3600.0,
            RESULTS_EXPIRING: 24 * 3600.0,
            BATCH_FINISHED: None,
        }
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertSettings:
        return cls(
            failure_percent=settings.alert_failure_percent,
            failure_min_finished=settings.alert_failure_min_finished,
            callbacks_window=settings.alert_callbacks_window,
            callbacks_min_polled=settings.alert_callbacks_min_polled,
            expiry_warn_days=settings.expiry_warn_days,
            public_url=settings.public_url,
            cooldowns={
                STUCK: settings.alert_stuck_cooldown,
                FAILURE_RATIO: settings.alert_failure_cooldown,
                PAUSED: settings.alert_paused_cooldown,
                CALLBACKS_SILENT: settings.alert_callbacks_cooldown,
                RESULTS_EXPIRING: settings.alert_expiry_cooldown,
                BATCH_FINISHED: None,
            },
        )

    def batch_link(self, batch: str) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url.rstrip('/')}/batches/{quote(batch, safe='')}"


@dataclass(frozen=True, slots=True)
class BatchFacts:
    """One batch: its counts, and for a finished one, when it ended and its units."""

    name: str
    counts: dict[LocalStatus, int]
    #: when klingwatch learned its latest final status
    last_finish: float | None = None
    #: units charged to its tasks (only gathered for finished batches)
    units: Decimal | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def running(self) -> bool:
        """Tasks still queued or in flight."""
        return any(n for status, n in self.counts.items() if not status.is_final)

    @property
    def finished(self) -> int:
        return sum(n for status, n in self.counts.items() if status.is_final)

    @property
    def failures(self) -> int:
        return self.counts.get(LocalStatus.FAILED, 0) + self.counts.get(LocalStatus.REJECTED, 0)


@dataclass(frozen=True, slots=True)
class Facts:
    """What one round of rules looks at (read by :func:`gather`)."""

    now: float
    #: when alerts first watched this ledger: batches that finished before are not announced
    since: float
    batches: list[BatchFacts] = field(default_factory=list)
    stuck: list[TaskRecord] = field(default_factory=list)
    pause: gates.PauseState | None = None
    #: finishes of tasks sent with a callback URL, within the window, by reporting source
    finished_by: dict[Source, int] = field(default_factory=dict)
    #: succeeded tasks not downloaded that Kling deletes soon, soonest first
    expiring: list[TaskRecord] = field(default_factory=list)


Rule = Callable[[Facts, AlertSettings], list[Sighting]]


def gather(
    ledger: Ledger, now: float, settings: AlertSettings, *, since: float, scale: float = 1.0
) -> Facts:
    """Read what the rules need (a handful of queries; run it off the event loop). ``scale``:
    the clock's, by which the nominal callbacks window is scaled."""
    last = ledger.batch_last_finish()
    batches = [BatchFacts(b.name, b.counts, last.get(b.name)) for b in ledger.batches()]
    # Units only for the batches a summary may be written for: those that ended lately.
    ended = [b.name for b in batches if not b.running and (b.last_finish or 0.0) >= since]
    units = ledger.batch_units(ended)
    batches = [
        replace(b, units=_sum_units(units[b.name])) if b.name in units else b for b in batches
    ]
    return Facts(
        now=now,
        since=since,
        batches=batches,
        stuck=ledger.tasks(stuck=True),
        pause=gates.pause_state(ledger),
        finished_by=ledger.finishes_by_source(now - settings.callbacks_window * scale),
        expiring=collection(ledger, now, settings.expiry_warn_days).expiring,
    )


def stuck_rule(facts: Facts, settings: AlertSettings) -> list[Sighting]:
    out = []
    for task in facts.stuck:
        kling = f", Kling {task.task_id}" if task.task_id else ""
        out.append(
            Sighting(
                STUCK,
                task.external_task_id,
                f"klingwatch: task {task.external_task_id} is stuck",
                _lines(
                    f"Task {task.external_task_id} (batch {task.batch}{kling}) is stuck: "
                    f"{task.stuck_reason or task.status.value}.",
                    "It is still being watched; nothing was cancelled.",
                    _link(settings, task.batch),
                ),
            )
        )
    return out


def failure_ratio_rule(facts: Facts, settings: AlertSettings) -> list[Sighting]:
    out = []
    cooldown = settings.cooldowns.get(FAILURE_RATIO) or 0.0
    for batch in facts.batches:
        finished = batch.finished
        if finished < settings.failure_min_finished:
            continue
        if not batch.running and not _ended_lately(batch, facts, cooldown):
            continue
        percent = 100.0 * batch.failures / finished
        if percent <= settings.failure_percent:
            continue
        failed = batch.counts.get(LocalStatus.FAILED, 0)
        rejected = batch.counts.get(LocalStatus.REJECTED, 0)
        out.append(
            Sighting(
                FAILURE_RATIO,
                batch.name,
                f"klingwatch: {percent:.0f}% of batch {batch.name} failed",
                _lines(
                    f"Batch {batch.name}: {batch.failures} of {finished} finished tasks failed "
                    f"({failed} failed, {rejected} rejected): {percent:.0f}%, over the "
                    f"{settings.failure_percent:g}% threshold.",
                    f"{batch.total - finished} tasks are still queued or running."
                    if batch.running
                    else "The batch has ended.",
                    _link(settings, batch.name),
                ),
            )
        )
    return out


def paused_rule(facts: Facts, settings: AlertSettings) -> list[Sighting]:
    pause = facts.pause
    if pause is None:
        return []
    queued = sum(b.counts.get(LocalStatus.QUEUED, 0) for b in facts.batches)
    meaning = _PAUSE_MEANING.get(pause.code or 0)
    code = f" (code {pause.code}{f': {meaning}' if meaning else ''})" if pause.code else ""
    when = (
        "Sending resumes by itself at the set delay."
        if pause.resume_after is not None
        else "Run `klingwatch resume` once it is fixed."
    )
    return [
        Sighting(
            PAUSED,
            "submissions",
            f"klingwatch: Kling paused submissions{code}",
            _lines(
                f"Kling refused new tasks{code}: {pause.reason}",
                f"{queued} tasks wait in the queue; nothing is lost. {when}",
            ),
        )
    ]


def callbacks_silent_rule(facts: Facts, settings: AlertSettings) -> list[Sighting]:
    polled = sum(facts.finished_by.get(s, 0) for s in _POLLED)
    called = facts.finished_by.get(Source.CALLBACK, 0)
    if called or polled < settings.callbacks_min_polled:
        return []
    window = format_duration(settings.callbacks_window)
    return [
        Sighting(
            CALLBACKS_SILENT,
            "callbacks",
            "klingwatch: Kling's callbacks are not arriving",
            _lines(
                f"In the last {window}, {polled} tasks sent with a callback URL were seen "
                "finished by polling and none by a callback.",
                "Check that the public URL reaches `klingwatch serve` (KLINGWATCH_PUBLIC_URL) "
                "and that nothing in between drops Kling's POSTs. Polling carries on.",
            ),
        )
    ]


def results_expiring_rule(facts: Facts, settings: AlertSettings) -> list[Sighting]:
    by_batch: dict[str, list[TaskRecord]] = {}
    for task in facts.expiring:
        by_batch.setdefault(task.batch, []).append(task)
    out = []
    for batch, tasks in sorted(by_batch.items()):
        first = min(expires_at(t) or facts.now for t in tasks)
        out.append(
            Sighting(
                RESULTS_EXPIRING,
                batch,
                f"klingwatch: results of batch {batch} expire soon",
                _lines(
                    f"{len(tasks)} succeeded tasks of batch {batch} are not downloaded; Kling "
                    f"deletes the first results on {format_when(first)}.",
                    f"Collect them with `klingwatch download --batch {batch} --dir DIR`.",
                    _link(settings, batch),
                ),
            )
        )
    return out


def batch_finished_rule(facts: Facts, settings: AlertSettings) -> list[Sighting]:
    out = []
    for batch in facts.batches:
        if batch.running or not batch.total or batch.last_finish is None:
            continue
        if batch.last_finish < facts.since:
            continue  # ended before alerts watched this ledger: old news
        counts = ", ".join(
            f"{n} {status.value}" for status, n in batch.counts.items() if n and status.is_final
        )
        units = f"; {_format_units(batch.units)} units" if batch.units is not None else ""
        out.append(
            Sighting(
                BATCH_FINISHED,
                batch.name,
                f"klingwatch: batch {batch.name} finished",
                _lines(
                    f"Batch {batch.name} finished: {batch.total} tasks ({counts}){units}.",
                    _link(settings, batch.name),
                ),
            )
        )
    return out


#: Every rule, by name, in the order its messages are sent.
RULES: dict[str, Rule] = {
    PAUSED: paused_rule,
    FAILURE_RATIO: failure_ratio_rule,
    CALLBACKS_SILENT: callbacks_silent_rule,
    STUCK: stuck_rule,
    RESULTS_EXPIRING: results_expiring_rule,
    BATCH_FINISHED: batch_finished_rule,
}


def evaluate(
    facts: Facts, settings: AlertSettings, rules: Sequence[str] = tuple(RULES)
) -> list[Sighting]:
    """Every incident open now, by the given rules (all by default)."""
    return [sighting for name in rules for sighting in RULES[name](facts, settings)]


def _ended_lately(batch: BatchFacts, facts: Facts, window: float) -> bool:
    """The batch ended since alerts watched, less than ``window`` (a cool-down: wall-clock
    seconds, not scaled) ago."""
    end = batch.last_finish
    return end is not None and end >= facts.since and facts.now - end < window


def _lines(*lines: str | None) -> str:
    return "\n".join(line for line in lines if line)


def _link(settings: AlertSettings, batch: str) -> str | None:
    link = settings.batch_link(batch)
    return None if link is None else f"Dashboard: {link}"


def _sum_units(values: Sequence[str]) -> Decimal | None:
    total = Decimal(0)
    seen = False
    for value in values:
        try:
            total += Decimal(value)
        except (InvalidOperation, ValueError):
            continue
        seen = True
    return total if seen else None


def _format_units(units: Decimal) -> str:
    return format(units.normalize(), "f")
