"""Counters of what a :class:`~klingwatch.kling.client.KlingClient` sent and got back.

The engine exposes them in ``/metrics``; the benchmark counts requests with them. Routes are
templates (``GET /v1/videos/text2video/{id}``), never raw URLs, so the label set stays small.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientStats", "Outcome", "Route"]

#: ``(method, route template)``, e.g. ``("GET", "/tasks")``.
Route = tuple[str, str]
#: ``(HTTP status or failure kind, Kling code or "")``, e.g. ``("429", "1302")``,
#: ``("200", "0")``, ``("timeout", "")``, ``("connection", "")``, ``("502", "")`` for a 502
#: answer that was not Kling's envelope.
Outcome = tuple[str, str]


@dataclass(slots=True)
class ClientStats:
    """Requests sent (every HTTP exchange, retries and re-signs included) and their outcomes."""

    by_route: Counter[Route] = field(default_factory=Counter)
    by_outcome: Counter[Outcome] = field(default_factory=Counter)
    #: Reads sent again by the retry policy.
    retries: int = 0

    @property
    def requests(self) -> int:
        """Every HTTP request sent."""
        return sum(self.by_route.values())

    def record(self, method: str, route: str, outcome: Outcome) -> None:
        self.by_route[(method, route)] += 1
        self.by_outcome[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: ``{"requests", "retries", "by_route", "by_outcome"}``."""
        return {
            "requests": self.requests,
            "retries": self.retries,
            "by_route": {f"{m} {r}": n for (m, r), n in sorted(self.by_route.items())},
            "by_outcome": {f"{s} {c}".strip(): n for (s, c), n in sorted(self.by_outcome.items())},
        }

    def __repr__(self) -> str:
        return f"ClientStats(requests={self.requests}, retries={self.retries})"
