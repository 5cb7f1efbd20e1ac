"""How long :meth:`KlingClient.wait` lets a task be before looking again.

One pure function, so the cadence can be read, tested and tuned without a server. The idea: look
quickly once after a task is created (early failures such as a refused image come back within
seconds), then aim at when the task is *expected* to change status. While the task is younger than
its product's typical duration, wait half of the expected remaining time (the looks converge on
the expected end); once it is overdue, back off in proportion to how late it is (a task running
long is likely to run longer still). Every delay is held within ``[FLOOR, CEILING]`` and jittered
so many waiters do not look in lockstep.

All durations are nominal seconds; the clock scales them when it sleeps.
"""

from __future__ import annotations

from klingwatch.kling.models import TaskStatus
from klingwatch.kling.products import ExpectedTiming

__all__ = ["CEILING", "EARLY_LOOK", "FLOOR", "JITTER", "jittered", "poll_delay"]

#: The quick look after creation, in seconds of task age.
EARLY_LOOK = 3.0
#: Never look again sooner than this ...
FLOOR = 2.0
#: ... nor later than this.
CEILING = 30.0
#: Relative jitter applied to every delay (±20%).
JITTER = 0.2


def poll_delay(
    status: TaskStatus, timing: ExpectedTiming, *, age: float, in_status: float
) -> float:
    """Seconds until the next look at a non-terminal task, before jitter.

    ``age`` is the time since the task was created; ``in_status`` the time since it was first
    seen in its current ``status``.
    """
    if status is TaskStatus.SUBMITTED:
        if age < EARLY_LOOK:
            return max(FLOOR, EARLY_LOOK - age)
        expected, elapsed = timing.total_p50, age
    else:
        # Processing: how long it has run is at least how long we have seen it run, and about
        # its age minus a typical queue (when we started watching a task already running).
        expected, elapsed = timing.run_p50, max(in_status, age - timing.queue_p50)
    remaining = expected - elapsed
    if remaining > 0:
        base = max(remaining / 2, expected / 10)
    else:
        base = max(expected / 10, -remaining / 4)
    return min(CEILING, max(FLOOR, base))


def jittered(delay: float, unit: float) -> float:
    """``delay`` moved by up to ±``JITTER`` of itself; ``unit`` is a random number in [0, 1]."""
    return delay * (1 + JITTER * (2 * unit - 1))
