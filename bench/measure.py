"""Pure figures for the benchmark: percentiles, slot utilisation, the ideal per-task cadence.

Everything here works on plain numbers and the JSON the sandbox's ground-truth routes answer, so
it can be tested without a sandbox. Times are Unix milliseconds unless a name says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: The common per-task cadence (nominal seconds): 10 s, x1.2 per poll after the 5th, at most 30 s.
FIRST_INTERVAL = 10.0
GROWTH = 1.2
GROW_AFTER = 5
LONGEST_INTERVAL = 30.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class LagSummary:
    """Detection lag (detected - Kling's updated_at) in real seconds, and how many were seen."""

    count: int
    p50: float
    p95: float
    max: float

    def nominal(self, scale: float) -> LagSummary:
        """The same lags in nominal seconds (real seconds divided by the time scale)."""
        return LagSummary(self.count, self.p50 / scale, self.p95 / scale, self.max / scale)


def lag_summary(pairs: Iterable[tuple[float | None, float | None]]) -> LagSummary:
    """Summarise ``(kling_updated_ms, detected_ms)`` pairs; pairs missing either are skipped.

    A negative lag (the detector's clock read before Kling's stamp, same machine) counts as 0.
    """
    lags = [
        max(0.0, (detected - updated) / 1000.0)
        for updated, detected in pairs
        if updated is not None and detected is not None
    ]
    if not lags:
        return LagSummary(0, math.nan, math.nan, math.nan)
    return LagSummary(len(lags), percentile(lags, 50), percentile(lags, 95), max(lags))


def slot_utilisation(
    timeline: Sequence[Sequence[float]], limit: int, start: float, end: float
) -> float:
    """Share of ``limit`` slots busy over ``[start, end]`` (ms), from a step ``timeline``.

    ``timeline`` is the sandbox's ``[[ms, in_use], ...]``: each point holds until the next.
    Returns NaN when the window is empty.
    """
    if end <= start or limit <= 0:
        return math.nan
    busy = 0.0
    level = 0.0
    cursor = start
    for at, in_use in timeline:
        if at > start:
            busy += level * (min(at, end) - cursor)
            cursor = min(at, end)
        level = float(in_use)
        if at >= end:
            break
    busy += level * (end - cursor)
    return busy / (limit * (end - start))


def queued_window(tasks: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """From the first create to the last (ms): while the account had work waiting for a slot."""
    created = [float(t["created_at"]) for t in tasks if t.get("created_at") is not None]
    if not created:
        return (math.nan, math.nan)
    return (min(created), max(created))


def ideal_polls(length: float) -> tuple[int, float]:
    """Polls and lag (nominal s) of the per-task cadence for a task final ``length`` s after create.

    This is the recipe as written with no time lost to requests: the reference a sequential loop
    can only approach (under a scaled clock with real latency it falls behind; see RESULTS.md).
    """
    elapsed = 0.0
    polls = 0
    interval = FIRST_INTERVAL
    while True:
        elapsed += interval
        polls += 1
        if elapsed >= length:
            return polls, elapsed - length
        if polls >= GROW_AFTER:
            interval = min(interval * GROWTH, LONGEST_INTERVAL)


@dataclass(frozen=True, slots=True)
class IdealBaseline:
    """The unhindered per-task cadence over one run's real task lifecycles (nominal seconds)."""

    requests_per_task: float
    lag_p50: float
    lag_p95: float


def ideal_baseline(tasks: Sequence[dict[str, Any]], scale: float) -> IdealBaseline:
    """Per-task cadence figures from the sandbox's task truth (``created_at``/``finished_at``).

    Counts one create per task plus its GETs; the 1303 answers a real loop adds are not included.
    """
    polls: list[int] = []
    lags: list[float] = []
    for task in tasks:
        if task.get("created_at") is None or task.get("finished_at") is None:
            continue
        length = (float(task["finished_at"]) - float(task["created_at"])) / 1000.0 / scale
        count, lag = ideal_polls(length)
        polls.append(count)
        lags.append(lag)
    if not polls:
        return IdealBaseline(math.nan, math.nan, math.nan)
    return IdealBaseline(
        requests_per_task=1.0 + sum(polls) / len(polls),
        lag_p50=percentile(lags, 50),
        lag_p95=percentile(lags, 95),
    )


def count_requests(stats: dict[str, Any]) -> tuple[int, int, int]:
    """``(total requests, creates tried, creates answered 1303)`` from ``/sandbox/stats``."""
    total = int(stats["requests"]["total"])
    creates = int(stats["creates"]["created"]) + sum(
        int(n) for n in stats["creates"]["refused"].values()
    )
    refused_1303 = int(stats["creates"]["refused"].get("1303", 0))
    return total, creates, refused_1303


def count_reads(stats: dict[str, Any]) -> int:
    """Status reads answered 200 (every ``GET`` route, and ``POST /tasks``, the new standard's
    query) in ``/sandbox/stats``."""
    return sum(
        sum(int(n) for answer, n in answers.items() if answer.startswith("200"))
        for route, answers in stats["requests"]["by_route"].items()
        if route.startswith("GET ") or route == "POST /tasks"
    )


@dataclass(frozen=True, slots=True)
class Duplicates:
    """How often one external id reached Kling: tasks made for it and create requests seen."""

    tasks_per_external_id: int
    creates_per_external_id: int


def duplicates(tasks: Sequence[dict[str, Any]]) -> Duplicates:
    """The worst external id in the sandbox's ``/sandbox/tasks`` truth (1 and 1 when all is well).

    ``creates_seen`` counts every create the sandbox took for that id, 1303 refusals included,
    so a refused create sent again shows here even though it made no second task.
    """
    made: dict[str, int] = {}
    creates: dict[str, int] = {}
    for task in tasks:
        external = task.get("external_task_id")
        if external is None:
            continue
        made[external] = made.get(external, 0) + 1
        creates[external] = max(creates.get(external, 0), int(task.get("creates_seen", 1)))
    return Duplicates(max(made.values(), default=0), max(creates.values(), default=0))


def per_second(count: float, seconds: float) -> float:
    """``count`` over ``seconds``; NaN for an empty or unknown interval."""
    if not seconds > 0:
        return math.nan
    return count / seconds
