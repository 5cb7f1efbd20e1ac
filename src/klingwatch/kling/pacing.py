"""Pacing: when to look at a task next, as one pure policy.

Both :meth:`KlingClient.wait <klingwatch.kling.client.KlingClient.wait>` (one task) and the
engine's :class:`~klingwatch.monitor.cadence.Cadence` (thousands, with timings learned from the
ledger and cached) ask this module, so a task is looked at the same way whoever waits for it.

The aim is to learn a task's outcome soon after it happens without hammering Kling. When a phase
of a task ends follows a distribution (:class:`Percentiles`: cold start from a product's
:meth:`~klingwatch.kling.products.Product.expected_timing`, :meth:`Timing.from_expected`; the
engine blends in what it measured), so the look schedule follows it::

    first look          sparse            dense window              geometric back-off
    soon after submit   halve the gap     every ~10% of p50         interval grows with the
    (quick failures)    to the window     from ~0.6*p50 to p95      overshoot past p95, up to
                                                                    the ceiling

A task's phase (:func:`phase`) is ``processing`` from when it started running, measured against
the run time; anything earlier is measured from its creation against queue + run. Every interval
is clamped to ``[floor, ceiling]`` and jittered (:func:`next_interval`, the random draw passed
in) so tasks created together do not come due in lockstep.

Units: whatever the caller's timings and ``now`` are in, consistently; :meth:`CadencePolicy.scaled`
and ``Timing.from_expected(scale=...)`` put nominal seconds on a scaled clock's axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from klingwatch.kling.products import ExpectedTiming

__all__ = [
    "CadencePolicy",
    "Percentiles",
    "Timing",
    "blend",
    "expected_looks",
    "interval_for",
    "next_interval",
    "phase",
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


@dataclass(frozen=True, slots=True)
class CadencePolicy:
    """The knobs of the look schedule, in nominal seconds (see :meth:`scaled`)."""

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
    #: the dense step when a look is a reason for a batched sweep (each sweep reads every
    #: active task, so its cost is the sweep's, paid while any task is in its window) ...
    batched_dense_fraction: float = 0.15
    #: ... and its bound
    batched_dense_max: float = 15.0
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
            batched_dense_max=self.batched_dense_max * scale,
        )


def interval_for(
    elapsed: float,
    finish: Percentiles,
    policy: CadencePolicy,
    *,
    from_submit: bool = True,
    batched: bool = False,
) -> float:
    """Seconds until the next look at a task ``elapsed`` seconds into a phase.

    ``finish`` is the distribution of when the phase ends, measured from its start;
    ``from_submit`` says the phase began at submit (the quick first look is for content checks,
    which fail a task within seconds of its creation, not of its start of running).
    ``batched``: the task is read in sweeps that cover many tasks a request, where a look is a
    reason for a sweep rather than a request of its own: no sparse looks before the dense
    window (an early finish is seen by the sweeps other tasks' windows call anyway), and the
    batched dense step (:attr:`CadencePolicy.batched_dense_fraction`). Pure and deterministic
    (no jitter, no clamping beyond ``[floor, ceiling]``).
    """
    elapsed = max(0.0, elapsed)
    fraction, most = policy.dense_fraction, policy.dense_max
    if batched:
        fraction, most = policy.batched_dense_fraction, policy.batched_dense_max
    dense = min(max(fraction * finish.p50, policy.floor), most)
    window_open = policy.window_open * finish.p50
    if from_submit and elapsed < policy.first_look:
        step = policy.first_look - elapsed
    elif elapsed < window_open:
        # Sparse: halve the distance to the window, so a few looks land before it opens.
        step = max(dense, (window_open - elapsed) / (1 if batched else 2))
    elif elapsed <= finish.p95:
        step = dense
    else:
        step = max(dense, policy.backoff_fraction * (elapsed - finish.p95))
    return min(max(step, policy.floor), policy.ceiling)


def next_interval(
    elapsed: float,
    finish: Percentiles,
    policy: CadencePolicy,
    draw: float,
    *,
    from_submit: bool = True,
    batched: bool = False,
) -> float:
    """:func:`interval_for`, moved by up to ``policy.jitter`` of itself and clamped again;
    ``draw`` is a random number in [0, 1] (0.5 moves nothing)."""
    base = interval_for(elapsed, finish, policy, from_submit=from_submit, batched=batched)
    step = base * (1 + policy.jitter * (2 * draw - 1))
    return min(max(step, policy.floor), policy.ceiling)


def phase(
    status: str, timing: Timing, *, created: float | None, running_since: float | None
) -> tuple[float | None, Percentiles]:
    """When the task's current phase started, and the distribution of when it ends.

    A ``processing`` task whose start of running is known is measured from it against the run
    time; anything else from its creation (``None`` when unknown) against queue + run.
    """
    if status == "processing" and running_since is not None:
        return running_since, timing.run
    return created, timing.total


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
