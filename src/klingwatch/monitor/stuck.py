"""Stuck and late: tasks that stay in one status far longer than their kind usually does.

A task is *stuck* when it has been in its current status past the learned p99 for its product,
model and mode (times ``factor``; or past a fixed ``threshold`` when one is set), or when Kling has
not changed its ``updated_at`` for ``stale_after``. Being stuck is only a flag with an event on the
timeline: the task is never cancelled or given up on (tasks have run for over an hour and still
succeeded), it keeps being watched, and the flag clears as soon as the task moves.

:class:`StuckDetector` is pure: it says what the flag should be; the poller writes it through
``Ledger.set_stuck``.
"""

from __future__ import annotations

from dataclasses import dataclass

from klingwatch.clock import format_duration
from klingwatch.monitor.cadence import Cadence, LookedTask

__all__ = ["StuckDetector", "StuckPolicy", "Verdict"]


@dataclass(frozen=True, slots=True)
class StuckPolicy:
    """When to call a task stuck; durations in nominal seconds (scaled by the clock)."""

    #: a fixed time-in-status after which a task is stuck; ``None``: use the learned p99
    threshold: float | None = None
    #: multiple of the learned (or cold-start) p99 before a task counts as stuck
    factor: float = 1.0
    #: never flag a task younger than this in its status, whatever the percentiles say
    min_age: float = 120.0
    #: flag a task whose Kling ``updated_at`` has not moved for this long; ``None``: never
    stale_after: float | None = 3600.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the stuck flag of one task should be, and why."""

    stuck: bool
    reason: str | None = None


class StuckDetector:
    """Judges one task at a time against its kind's timing (through the shared cadence)."""

    def __init__(self, cadence: Cadence, policy: StuckPolicy | None = None) -> None:
        self.cadence = cadence
        self.policy = policy or StuckPolicy()
        self._scale = cadence.scale

    def judge(self, task: LookedTask, now: float) -> Verdict:
        """Whether ``task`` is stuck at ``now`` (clock seconds); only active tasks can be."""
        if task.status not in ("submitted", "processing", "unknown"):
            return Verdict(False)
        start, p99 = self.cadence.late_after(task, now)
        if start is not None:
            in_status = now - start
            limit = (
                self.policy.threshold * self._scale
                if self.policy.threshold is not None
                else max(p99 * self.policy.factor, self.policy.min_age * self._scale)
            )
            if in_status > limit:
                basis = "the set threshold" if self.policy.threshold is not None else "its p99"
                return Verdict(
                    True,
                    f"{task.status} for {format_duration(in_status / self._scale)}, past "
                    f"{basis} of {format_duration(limit / self._scale)} for {_kind(task)}",
                )
        if self.policy.stale_after is not None and task.kling_updated_ms is not None:
            quiet = now - task.kling_updated_ms / 1000.0
            if quiet > self.policy.stale_after * self._scale:
                return Verdict(
                    True, f"no update from Kling for {format_duration(quiet / self._scale)}"
                )
        return Verdict(False)


def _kind(task: LookedTask) -> str:
    return " ".join(part for part in (task.product, task.model, task.mode) if part)
