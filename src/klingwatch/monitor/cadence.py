"""Cadence: when the engine looks at each of its tasks next.

The look schedule itself is the pure policy of :mod:`klingwatch.kling.pacing`, the same one
:meth:`KlingClient.wait <klingwatch.kling.client.KlingClient.wait>` follows. On top of it
:class:`Cadence` adds what only the engine has: timings learned per product, model and mode from
the ledger (blended with the registry's cold start, cached for a while), a task's phase read from
its ledger record (:func:`phase_of`), and a seeded ``random.Random`` for the jitter.

Units: everything here is in *clock seconds*. Policy values and cold-start timings are nominal
seconds and are converted with the clock's scale (``KLINGWATCH_TIME_SCALE``); learned durations come
from timestamps already on the clock's time axis, so they are used as they are.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from klingwatch.kling.pacing import CadencePolicy, Percentiles, Timing, blend, next_interval, phase
from klingwatch.kling.products import ExpectedTiming, get_product

__all__ = ["Cadence", "LookedTask", "TimingSource", "phase_of", "product_cold_start"]

#: Learned timing for (product, model, mode), or ``None`` when too little is known.
TimingSource = Callable[[str, str | None, str | None], Timing | None]


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
    # Kling's time of the move to processing is the true start; failing that, the earlier of
    # its last update time and the first local sighting (which lags the real start).
    running_since = _seconds(task.kling_processing_ms)
    if running_since is None:
        starts = [t for t in (task.processing_at, _seconds(task.kling_updated_ms)) if t is not None]
        running_since = min(starts, default=None)
    created = _seconds(task.kling_created_ms)
    if created is None:
        created = task.sent_at if task.sent_at is not None else task.queued_at
    return phase(task.status, timing, created=created, running_since=running_since)


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

    def interval(self, task: LookedTask, now: float, *, batched: bool = False) -> float:
        """Seconds from ``now`` until the next look at ``task`` (jittered, clamped);
        ``batched``: the task is read in sweeps that cover many (see :func:`interval_for
        <klingwatch.kling.pacing.interval_for>`)."""
        timing = self.timing(task, now)
        start, finish = phase_of(task, timing)
        elapsed = 0.0 if start is None else now - start
        draw = self._rng.random() if self.policy.jitter else 0.5
        from_submit = finish is not timing.run
        return next_interval(
            elapsed, finish, self.policy, draw, from_submit=from_submit, batched=batched
        )

    def next_look(self, task: LookedTask, now: float, *, batched: bool = False) -> float:
        """The clock time of the next look at ``task`` (``batched``: see :meth:`interval`)."""
        return now + self.interval(task, now, batched=batched)

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
