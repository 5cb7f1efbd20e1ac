"""When a batch will be done: one estimate, shown alike by ``status``, the live view and the
dashboard.

Two ways to know, the better one first:

* **throughput**: once at least :data:`MIN_FINISHES` tasks of the batch finished in the last
  :data:`RATE_WINDOW` seconds, the rest takes ``remaining / rate``. This is what the account is
  really doing: it already counts the slot limit, Kling's queue and the failure rate;
* **durations**: before that (a batch just sent), the learned queue and run times (cold start:
  the product's typical ones): the slowest task in flight is expected to end at its p50, and the
  queued ones follow in waves as wide as the tasks in flight now.

:func:`progress` reads what the estimate needs (a few counting queries, and the tasks in flight,
which Kling's slots keep few); :func:`estimate` is pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from klingwatch.monitor.cadence import Cadence, phase_of
from klingwatch.monitor.learned import learned_timing
from klingwatch.store import ACTIVE_STATUSES, Ledger, LocalStatus

__all__ = ["MIN_FINISHES", "RATE_WINDOW", "Basis", "Eta", "Progress", "estimate", "progress"]

#: Seconds of recent finishes a throughput is measured over.
RATE_WINDOW = 900.0
#: Finishes in that window before a throughput is trusted.
MIN_FINISHES = 3
#: Tasks in flight looked at for the durations estimate (Kling's slots bound them anyway).
_IN_FLIGHT_SAMPLE = 2000


class Basis(StrEnum):
    """What an estimate rests on."""

    DONE = "done"
    THROUGHPUT = "throughput"
    DURATIONS = "durations"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Progress:
    """What the estimate needs to know of a batch (or of all tasks), at ``at``."""

    at: float
    #: Tasks not final yet (queued ones included).
    remaining: int
    #: Tasks that finished in the last :data:`RATE_WINDOW` seconds.
    recent_finishes: int
    #: When the first task finished (clock seconds), if one did.
    first_finish: float | None
    #: By learned durations: seconds until what is in flight and queued would be done.
    by_durations: float | None


@dataclass(frozen=True, slots=True)
class Eta:
    """Seconds until every task is final, how it was reckoned, and the finish rate seen."""

    seconds: float | None
    basis: Basis
    per_minute: float | None = None


def estimate(p: Progress) -> Eta:
    """The estimate for ``p`` (pure; see the module docstring)."""
    if p.remaining == 0:
        return Eta(0.0, Basis.DONE)
    if p.recent_finishes >= MIN_FINISHES and p.first_finish is not None:
        # A batch younger than the window is measured over its own age (at least a minute).
        window = min(RATE_WINDOW, max(60.0, p.at - p.first_finish))
        per_second = p.recent_finishes / window
        return Eta(round(p.remaining / per_second, 1), Basis.THROUGHPUT, per_second * 60.0)
    if p.by_durations is not None:
        return Eta(round(max(p.by_durations, 0.0), 1), Basis.DURATIONS)
    return Eta(None, Basis.UNKNOWN)


def progress(ledger: Ledger, batch: str | None, now: float) -> Progress:
    """Read what :func:`estimate` needs of ``batch`` (``None``: every task) from ``ledger``.

    Synchronous: the CLI calls it directly, the engine and the server through
    ``AsyncLedger.read``.
    """
    counts = ledger.counts(batch=batch)
    remaining = sum(n for status, n in counts.items() if not status.is_final)
    recent, first = ledger.finishes(batch=batch, since=now - RATE_WINDOW)
    by_durations: float | None = None
    if remaining and recent < MIN_FINISHES:
        by_durations = _by_durations(ledger, batch, now, counts)
    return Progress(now, remaining, recent, first, by_durations)


def _by_durations(
    ledger: Ledger, batch: str | None, now: float, counts: dict[LocalStatus, int]
) -> float | None:
    active = sum(counts.get(s, 0) for s in ACTIVE_STATUSES)
    queued = counts.get(LocalStatus.QUEUED, 0)
    cadence = Cadence(learned=learned_timing(ledger))
    left = 0.0
    known = False
    if active:
        for task in ledger.tasks(status=ACTIVE_STATUSES, batch=batch, limit=_IN_FLIGHT_SAMPLE):
            start, finish = phase_of(task, cadence.timing(task, now))
            if start is not None:
                left = max(left, start + finish.p50 - now)
                known = True
    if queued:
        for sample in ledger.tasks(status=LocalStatus.QUEUED, batch=batch, limit=1):
            per_task = cadence.timing(sample, now).total.p50
            left += math.ceil(queued / max(1, active)) * per_task
            known = True
    return left if known else None
