"""When a batched sweep runs, and what it asks Kling for: pure functions, no I/O.

A reading style that covers many tasks per request (a legacy list page holds 500, ``POST
/tasks`` 500 a page, ``GET /tasks?task_ids=`` 20) makes one more active task free to read, so
the time between looks should follow the *request* budget, not each task's schedule: every
active task is read at one short fixed interval that grows only with the pages a sweep costs::

    interval = clamp(base * ceil(active / per), minimum, maximum)     (nominal seconds)

This is the *shortest* time between sweeps. Whether a sweep is due is the poller's question
(:meth:`Poller._next_look <klingwatch.monitor.poller.Poller._next_look>`): at every interval while
tasks wait to be sent (a finish frees a slot), else when some task's cadence
(:mod:`klingwatch.kling.pacing`, without its sparse looks) says it is worth a look: a run then
costs about one request per interval while its tasks finish, and none while they all run far
from their finish.

With Kling's callbacks arriving, polling is a safety net: :func:`callback_overdue` picks the
tasks whose callback is late against how long such tasks take (learned p95 plus a margin).

With an API key, :func:`window_start` bounds the creation-time window of a ``POST /tasks`` read
(every status) so one request returns the active tasks *and* the ones that just finished.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SweepBudget", "callback_overdue", "window_start"]


@dataclass(frozen=True, slots=True)
class SweepBudget:
    """How often batched sweeps run; seconds are nominal (scaled by the clock).

    The defaults spend one request per 6 s per 500 active tasks: 600 requests an hour for
    a batch of any size up to 500 in flight, against a look every 10-30 s *per task* for a loop
    that reads tasks one by one.
    """

    #: seconds between sweeps for up to ``per`` active tasks (``KLINGWATCH_SWEEP_INTERVAL``)
    base: float = 6.0
    #: active tasks one sweep request covers (a list page)
    per: int = 500
    #: seconds between sweeps for up to ``per`` active tasks while tasks wait to be sent:
    #: every finish frees a slot a waiting task needs, and the create it allows costs more than
    #: the read that sees it (``KLINGWATCH_SWEEP_WAITING``)
    waiting: float = 2.0
    #: never sweep more often than this (``KLINGWATCH_SWEEP_MIN``)
    minimum: float = 2.0
    #: never leave active tasks unread longer than this (``KLINGWATCH_SWEEP_MAX``)
    maximum: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.minimum <= self.maximum:
            raise ValueError("sweep budget needs 0 < minimum <= maximum")
        if self.base <= 0 or self.waiting <= 0 or self.per < 1:
            raise ValueError("sweep budget needs base > 0, waiting > 0 and per >= 1")

    def interval(self, active: int, *, waiting: bool = False) -> float:
        """Nominal seconds between sweeps while ``active`` tasks are in flight (``waiting``:
        and tasks wait to be sent)."""
        pages = max(1, math.ceil(active / self.per))
        base = min(self.base, self.waiting) if waiting else self.base
        return min(max(base * pages, self.minimum), self.maximum)


def window_start(created_ms: Iterable[int], *, margin_ms: int) -> int | None:
    """The ``start_time`` (ms) of a ``POST /tasks`` window holding every task in ``created_ms``
    (Kling's creation times of the active tasks), ``margin_ms`` earlier for rounding; ``None``
    when there is none (no window: Kling's default, the last 30 days)."""
    oldest = min(created_ms, default=None)
    return None if oldest is None else max(0, oldest - margin_ms)


def callback_overdue(started: float | None, expected: float, *, now: float, margin: float) -> bool:
    """Whether a task whose phase began at ``started`` (clock seconds; ``None``: unknown) should
    have had its final callback by ``now``: ``expected`` is how long such a phase takes (the
    learned p95), ``margin`` the slack for a callback's delivery. A task of unknown start is
    treated as overdue: only a read can tell where it stands."""
    if started is None:
        return True
    return now - started > expected + margin
