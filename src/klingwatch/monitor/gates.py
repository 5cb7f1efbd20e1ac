"""What may hold sending back, kept in the ledger so it survives restarts and is shared by replicas.

* **The pause**: an account-level refusal (1100 abnormal, 1101 arrears, 1102 pack exhausted,
  1103 no permission, 1304 IP whitelist, or credentials Kling refuses) stops every create until
  ``klingwatch resume`` (:func:`resume`), or, for 1102 only, until an optional auto-resume delay
  has passed. It is a ledger meta flag (:data:`PAUSE_KEY`) plus an alert (:data:`PAUSE_ALERT`) that
  ``status`` shows.
* **Learned slot limits**: a 1303 answer while N slots of a pack family were in flight means the
  account's limit for that family is N (:func:`learn_slots`); it is kept as ``slots.<family>``
  and never exceeded afterwards.

How long sending waits after a refusal is not kept here: that is the one backoff rule,
:class:`klingwatch.kling.retry.Backoff`, applied by :mod:`klingwatch.monitor.create_policy`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from klingwatch.kling.products import Family
from klingwatch.store import Ledger

__all__ = [
    "PAUSE_ALERT",
    "PAUSE_KEY",
    "PauseState",
    "forget_slots",
    "learn_slots",
    "learned_limits",
    "learned_slots",
    "pause",
    "pause_state",
    "resume",
]

logger = logging.getLogger(__name__)

#: Ledger meta key of the pause flag (JSON of :class:`PauseState`; absent when sending).
PAUSE_KEY = "submit.paused"
#: Alert kind raised while sending is paused.
PAUSE_ALERT = "submissions_paused"
_SLOTS_PREFIX = "slots."


@dataclass(frozen=True, slots=True)
class PauseState:
    """Why sending stopped: Kling's ``code`` and message, and when."""

    reason: str
    at: float
    code: int | None = None
    #: seconds after ``at`` when sending resumes by itself (``None``: only by ``klingwatch resume``)
    resume_after: float | None = None

    @property
    def resume_at(self) -> float | None:
        return None if self.resume_after is None else self.at + self.resume_after

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PauseState:
        try:
            data = json.loads(text)
            return cls(
                reason=str(data["reason"]),
                at=float(data["at"]),
                code=None if data.get("code") is None else int(data["code"]),
                resume_after=(
                    None if data.get("resume_after") is None else float(data["resume_after"])
                ),
            )
        except (ValueError, KeyError, TypeError):
            # A flag we cannot read is still a pause: stay on the safe side.
            return cls(reason=f"paused ({text[:200]})", at=0.0)


def pause_state(ledger: Ledger) -> PauseState | None:
    """The current pause, or ``None`` when sending is allowed."""
    raw = ledger.get_meta(PAUSE_KEY)
    return None if raw is None else PauseState.from_json(raw)


def pause(ledger: Ledger, state: PauseState) -> None:
    """Stop every create and raise the alert ``status`` shows."""
    ledger.set_meta(PAUSE_KEY, state.to_json())
    code = f" (code {state.code})" if state.code is not None else ""
    when = (
        f"; sending resumes by itself in {state.resume_after:.0f} s"
        if state.resume_after is not None
        else "; run `klingwatch resume` once it is fixed"
    )
    ledger.add_alert(PAUSE_ALERT, f"submissions paused{code}: {state.reason}{when}", state.at)
    logger.warning("submissions paused%s: %s", code, state.reason)


def resume(ledger: Ledger) -> PauseState | None:
    """Clear the pause and its alert; return what was paused (``None`` if nothing was)."""
    was = pause_state(ledger)
    ledger.set_meta(PAUSE_KEY, None)
    ledger.clear_alerts(PAUSE_ALERT)
    if was is not None:
        logger.info("submissions resumed (were paused: %s)", was.reason)
    return was


def learned_slots(ledger: Ledger, family: str) -> int | None:
    """The slot limit learned for ``family`` from 1303 answers, if any."""
    raw = ledger.get_meta(_SLOTS_PREFIX + family)
    try:
        return None if raw is None else max(1, int(raw))
    except ValueError:
        return None


def learned_limits(ledger: Ledger) -> dict[str, int]:
    """Every family's learned slot limit (families with none are absent)."""
    found = {family.value: learned_slots(ledger, family) for family in Family}
    return {family: n for family, n in found.items() if n is not None}


def learn_slots(ledger: Ledger, family: str, in_flight: int) -> int | None:
    """Record that a 1303 came while ``in_flight`` slots of ``family`` were busy.

    The limit becomes ``in_flight`` (or stays lower if a lower one was learned before). Nothing
    is learned from ``in_flight == 0``: the slots are then held by work klingwatch does not track.
    Returns the limit now in force.
    """
    before = learned_slots(ledger, family)
    if in_flight <= 0:
        return before
    limit = in_flight if before is None else min(before, in_flight)
    if limit != before:
        ledger.set_meta(_SLOTS_PREFIX + family, str(limit))
        logger.info("learned the %s slot limit from a 1303: %d", family, limit)
    return limit


def forget_slots(ledger: Ledger) -> dict[str, int]:
    """Drop every learned slot limit (after a pack upgrade); return what was forgotten."""
    out: dict[str, int] = {}
    for family in Family:
        value = learned_slots(ledger, family)
        if value is not None:
            out[family.value] = value
            ledger.set_meta(_SLOTS_PREFIX + family.value, None)
    return out
