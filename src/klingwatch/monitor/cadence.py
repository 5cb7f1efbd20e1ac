"""Cadence: when to look at each task next.

The aim is to learn a task's outcome soon after it happens without hammering Kling. A task's
finish time follows a distribution (learned per product, model and mode from the ledger; cold start
from :meth:`klingwatch.kling.products.Product.expected_timing`), so the look schedule follows it::

    first look          sparse            dense window              geometric back-off
    soon after submit   halve the gap     every ~10% of p50         interval grows with the
    (quick failures)    to the window     from ~0.6*p50 to p95      overshoot past p95, up to
                                                                    the ceiling

Every interval is clamped to ``[floor, ceiling]`` and jittered (a seeded ``random.Random`` may be
injected) so thousands of tasks submitted together do not come due in lockstep.

Units: everything here is in *clock seconds*. Policy values and cold-start timings are nominal
seconds and are converted with the clock's scale (``KLINGWATCH_TIME_SCALE``); learned durations come
from timestamps already on the clock's time axis, so they are used as they are.

The module is pure apart from :class:`Cadence`, which only caches timing look-ups.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from klingwatch.kling.products import ExpectedTiming, get_product

__all__ = [
    "Cadence",
    "CadencePolicy",
    "LookedTask",
    "Percentiles",
    "Timing",
    "TimingSource",
    "blend",
    "expected_looks",
    "interval_for",
    "phase_of",
    "product_cold_start",
]

# Cold start knows p50 and p95 only; a tail this much longer than p95 stands in for p99.
_P99_OVER_P95 = 1.6


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Seconds after a phase starts by which half / 95% / 99% of tasks have left it."""

    p50: float
    p95: float
    p99: float

    def __post_init__(self) -> None:
        if not 0 <= self.p50 <= self.p95 <= self.p99:
            raise ValueError(f"percentiles must satisfy 0 <= p50 <= p95 <= p99, got {self}")

    def __add__(self, other: Percentiles) -> Percentiles:
        # Summing percentiles overstates the tail of a sum; for scheduling looks that errs on
        # the side of looking a little longer, which is the cheap mistake.
        return Percentiles(self.p50 + other.p50, self.p95 + other.p95, self.p99 + other.p99)

    def times(self, factor: float) -> Percentiles:
        return Percentiles(self.p50 * factor, self.p95 * factor, self.p99 * factor)


@dataclass(frozen=True, slots=True)
class Timing:
    """How long tasks of one kind stay ``submitted`` (queue) and ``processing`` (run)."""

    queue: Percentiles
    run: Percentiles
    #: finished tasks this was learned from; 0 means a cold-start default
    samples: int = 0

    @property
    def total(self) -> Percentiles:
        """From submit to finish."""
        return self.queue + self.run

    @classmethod
    def from_expected(cls, expected: ExpectedTiming, *, scale: float = 1.0) -> Timing:
        """A cold-start timing from a product's nominal expectations, on a clock of ``scale``."""
        queue = Percentiles(
            expected.queue_p50, expected.queue_p95, expected.queue_p95 * _P99_OVER_P95
        )
        run = Percentiles(expected.run_p50, expected.run_p95, expected.run_p95 * _P99_OVER_P95)
        return cls(queue.times(scale), run.times(scale), samples=0)


def blend(learned: Timing, prior: Timing, prior_weight: float) -> Timing:
    """``learned`` pulled towards ``prior`` as if the prior were ``prior_weight`` more samples."""
    w = learned.samples / (learned.samples + prior_weight) if prior_weight > 0 else 1.0

    def mix(a: Percentiles, b: Percentiles) -> Percentiles:
        # A convex mix of two ordered triples is ordered.
        return Percentiles(
            w * a.p50 + (1 - w) * b.p50, w * a.p95 + (1 - w) * b.p95, w * a.p99 + (1 - w) * b.p99
        )

    return Timing(mix(learned.queue, prior.queue), mix(learned.run, prior.run), learned.samples)


#: Learned timing for (product, model, mode), or ``None`` when too little is known.
TimingSource = Callable[[str, str | None, str | None], Timing | None]


@dataclass(frozen=True, slots=True)
class CadencePolicy:
    """The knobs of the look schedule, in nominal seconds (scaled by the clock)."""

    #: first look after submit: content checks often fail a task within seconds
    first_look: float = 5.0
    #: never look at one task more often than this
    floor: float = 2.0
    #: never leave a task unlooked-at longer than this
    ceiling: float = 120.0
    #: in the dense window, look every this fraction of the phase's p50 ...
    dense_fraction: float = 0.1
    #: ... but at least this often (bounds detection lag on long tasks)
    dense_max: float = 10.0
    #: the dense window opens at this fraction of p50
    window_open: float = 0.6
    #: past p95 the interval is this fraction of the overshoot (geometric back-off)
    backoff_fraction: float = 0.25
    #: +/- fraction of random jitter applied to every interval
    jitter: float = 0.1
    #: learned timings from fewer finished tasks than this are ignored (cold start instead)
    min_samples: int = 3
    #: the cold-start default weighs as much as this many finished tasks when blended with
    #: what was learned: early in a batch only the fastest tasks have finished, and trusting
    #: them alone would call every other task late and back off from it
    prior_weight: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.ceiling:
            raise ValueError("cadence needs 0 < floor <= ceiling")
        if not 0 <= self.jitter < 1:
            raise ValueError("cadence jitter must be within [0, 1)")

    def scaled(self, scale: float) -> CadencePolicy:
        """This policy on a clock whose durations are multiplied by ``scale``."""
        if scale == 1.0:
            return self
        return replace(
            self,
            first_look=self.first_look * scale,
            floor=self.floor * scale,
            ceiling=self.ceiling * scale,
            dense_max=self.dense_max * scale,
        )


def interval_for(elapsed: float, finish: Percentiles, policy: CadencePolicy) -> float:
    """Seconds until the next look at a task ``elapsed`` seconds into a phase.

    ``finish`` is the distribution of when the phase ends, measured from its start. Pure and
    deterministic (no jitter, no clamping beyond ``[floor, ceiling]``).
    """
    elapsed = max(0.0, elapsed)
    dense = min(max(policy.dense_fraction * finish.p50, policy.floor), policy.dense_max)
    window_open = policy.window_open * finish.p50
    if elapsed < policy.first_look:
        step = policy.first_look - elapsed
    elif elapsed < window_open:
        # Sparse: halve the distance to the window, so a few looks land before it opens.
        step = max(dense, (window_open - elapsed) / 2)
    elif elapsed <= finish.p95:
        step = dense
    else:
        step = max(dense, policy.backoff_fraction * (elapsed - finish.p95))
    return min(max(step, policy.floor), policy.ceiling)


class LookedTask(Protocol):
    """The fields of a ledger task record the cadence reads."""

    @property
    def status(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def model(self) -> str | None: ...
    @property
    def mode(self) -> str | None: ...
    @property
    def request(self) -> Mapping[str, Any]: ...
    @property
    def kling_created_ms(self) -> int | None: ...
    @property
    def kling_updated_ms(self) -> int | None: ...
    @property
    def kling_processing_ms(self) -> int | None: ...
    @property
    def sent_at(self) -> float | None: ...
    @property
    def queued_at(self) -> float | None: ...
    @property
    def processing_at(self) -> float | None: ...


def phase_of(task: LookedTask, timing: Timing) -> tuple[float | None, Percentiles]:
    """When the task's current phase started (clock seconds) and when it should end.

    ``processing``: from the moment it started running (Kling's time of the move, else when it
    was first seen processing), by the run distribution. Otherwise from submit (Kling's creation
    time, else when it was sent), by the queue + run distribution.
    """
    if task.status == "processing":
        # Kling's time of the move to processing is the true start; failing that, the earlier
        # of its last update time and the first local sighting (which lags the real start).
        if task.kling_processing_ms is not None:
            return task.kling_processing_ms / 1000.0, timing.run
        starts = [t for t in (task.processing_at, _seconds(task.kling_updated_ms)) if t is not None]
        if starts:
            return min(starts), timing.run
    start = task.sent_at if task.sent_at is not None else task.queued_at
    if task.kling_created_ms is not None:
        start = task.kling_created_ms / 1000.0
    return start, timing.total


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


ColdStart = Callable[[LookedTask], Timing]

#: Used when a task names a product this version does not know.
_FALLBACK = ExpectedTiming(queue_p50=10, queue_p95=30, run_p50=75, run_p95=180)


def product_cold_start(scale: float = 1.0) -> ColdStart:
    """Cold-start timings from the product registry (pro and long videos take longer)."""

    def cold_start(task: LookedTask) -> Timing:
        try:
            expected = get_product(task.product).expected_timing(task.request)
        except KeyError:
            expected = _FALLBACK
        return Timing.from_expected(expected, scale=scale)

    return cold_start


class Cadence:
    """Decides each task's next look, from learned timings with a cold-start fallback.

    ``learned`` is asked for (product, model, mode) timings and cached for ``cache_ttl`` clock
    seconds, then blended with the cold start (see :attr:`CadencePolicy.prior_weight`);
    ``cold_start`` gives the default for a task when nothing (or too little) is learned (by
    default the product registry's expectations, scaled).
    ``rng`` drives the jitter; pass ``random.Random(seed)`` for repeatable schedules.
    """

    def __init__(
        self,
        *,
        policy: CadencePolicy | None = None,
        scale: float = 1.0,
        learned: TimingSource | None = None,
        cold_start: ColdStart | None = None,
        rng: random.Random | None = None,
        cache_ttl: float = 60.0,
    ) -> None:
        self.policy = (policy or CadencePolicy()).scaled(scale)
        self.scale = scale
        self._learned = learned
        self._cold_start = cold_start or product_cold_start(scale)
        self._rng = rng or random.Random()
        self._cache_ttl = cache_ttl * scale
        self._cache: dict[tuple[str, str | None, str | None], tuple[float, Timing | None]] = {}

    def timing(self, task: LookedTask, now: float) -> Timing:
        """The timing that applies to ``task``: learned when trustworthy, else cold start."""
        learned: Timing | None = None
        if self._learned is not None:
            key = (task.product, task.model, task.mode)
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self._cache_ttl:
                learned = hit[1]
            else:
                learned = self._learned(*key)
                self._cache[key] = (now, learned)
        prior = self._cold_start(task)
        if learned is not None and learned.samples >= self.policy.min_samples:
            return blend(learned, prior, self.policy.prior_weight)
        return prior

    def interval(self, task: LookedTask, now: float) -> float:
        """Seconds from ``now`` until the next look at ``task`` (jittered, clamped)."""
        timing = self.timing(task, now)
        start, finish = phase_of(task, timing)
        elapsed = 0.0 if start is None else now - start
        step = interval_for(elapsed, finish, self.policy)
        if self.policy.jitter:
            step *= 1 + self._rng.uniform(-self.policy.jitter, self.policy.jitter)
        return min(max(step, self.policy.floor), self.policy.ceiling)

    def next_look(self, task: LookedTask, now: float) -> float:
        """The clock time of the next look at ``task``."""
        return now + self.interval(task, now)

    def late_after(self, task: LookedTask, now: float) -> tuple[float | None, float]:
        """(when the task entered its status, seconds by which 99% of such tasks have left it).

        ``processing`` is measured against the run time; anything earlier against the queue.
        """
        timing = self.timing(task, now)
        start, finish = phase_of(task, timing)
        if finish is timing.run:
            return start, timing.run.p99
        return start, timing.queue.p99

    async def prepare(self, tasks: Iterable[LookedTask], now: float) -> None:
        """Let a learned-timing source that reads asynchronously (the engine's
        :class:`~klingwatch.monitor.learned.LearnedTimings`) fetch what ``tasks`` will need and
        this cadence has not cached, so the looks computed next never wait on the ledger."""
        refresh = getattr(self._learned, "refresh", None)
        if refresh is None:
            return
        stale = {
            key
            for key in {(t.product, t.model, t.mode) for t in tasks}
            if (hit := self._cache.get(key)) is None or now - hit[0] >= self._cache_ttl
        }
        if stale:
            await refresh(stale)
            for key in stale:
                self._cache.pop(key, None)

    def forget(self) -> None:
        """Drop cached timings (e.g. after many tasks finished)."""
        self._cache.clear()


def expected_looks(finish: Percentiles, until: float, policy: CadencePolicy) -> int:
    """How many looks the schedule makes in ``until`` seconds of one phase (no jitter).

    Handy for tests and back-of-envelope request budgets.
    """
    t, n = 0.0, 0
    while True:
        t += interval_for(t, finish, policy)
        if t > until or not math.isfinite(t):
            return n
        n += 1
