"""The one door's rules, as a pure function: given a task's state and one observation, what next.

No SQL here: :func:`decide` is what :meth:`klingwatch.store.Ledger.apply` runs for every
observation, kept apart so the rules can be read in one place and hammered by property tests.

Allowed status transitions (row: the task's status; column: the observed status)::

    from \\ to    queued    unknown  submitted  processing  succeed  failed  rejected
    queued        =         yes      yes        yes         yes      yes     yes
    unknown       RECOVERY  =        yes        yes         yes      yes     yes
    submitted     -         -        =          yes         yes      yes     -
    processing    -         -        -          =           yes      yes     -
    succeed       -         -        -          -           =        -       -
    failed        -         -        -          -           -        =       -
    rejected      -         -        -          -           -        -       =

``yes``: the status moves forward (the rank rises; skipping ranks is fine: a task first seen
``succeed`` was also submitted). ``-``: ignored; a late ``processing`` never overwrites ``succeed``,
and a final status never changes. ``RECOVERY``: the only backward move, ``unknown -> queued``, and
only with source :attr:`Source.RECOVERY` (the lookup by external_task_id found nothing, so the
task may be sent again). ``rejected`` only comes from ``queued`` / ``unknown``: Kling refused the
create, so the task never reached a slot. ``=``: the same status again: no status change, but the
facts it carries are merged:

* ``task_id`` and ``kling_created_ms`` are attached from any report when the row has none (a
  different ``task_id`` for the same row is ignored);
* ``kling_updated_ms`` keeps the largest value seen;
* ``result``, the charges (``units``, ``cash_*``) and ``status_msg`` of the current status are
  filled when missing and replaced when the report is strictly newer (a larger
  ``kling_updated_ms``).

So applying a task's reports in any order, any number of times, ends in the same status, task_id,
result and status_msg as applying them in order (as long as the lifecycle got past ``unknown``;
the recovery rule is, by design, the one order-sensitive edge). Each accepted status change is one
event; merging facts writes none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from klingwatch.store.records import STATE_FIELDS, LocalStatus, Observation, Source, TaskState

__all__ = ["STATE_FIELDS", "TaskState", "Verdict", "accepts", "decide"]

#: What Kling charged, as the task's final report carries it: filled and merged like a result.
_CHARGES = ("units", "cash_amount", "cash_currency")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`decide` concluded: the task's next state and what differs from before."""

    state: TaskState
    status_changed: bool
    fields_changed: bool

    @property
    def changed(self) -> bool:
        """Anything at all to write."""
        return self.status_changed or self.fields_changed


def accepts(old: LocalStatus, new: LocalStatus, source: Source) -> bool:
    """Whether a task in status ``old`` moves to ``new`` on a report from ``source``."""
    if new is old or old.is_final:
        return False
    if new is LocalStatus.REJECTED:
        return old in (LocalStatus.QUEUED, LocalStatus.UNKNOWN)
    if new is LocalStatus.QUEUED:
        return old is LocalStatus.UNKNOWN and source is Source.RECOVERY
    return new.rank > old.rank


def decide(state: TaskState, obs: Observation) -> Verdict:
    """Apply one observation to one task's state (pure; see the module docstring for the rules)."""
    msg = obs.status_msg or None  # Kling sends "" for "no message"
    updates: dict[str, Any] = {}
    if state.task_id is None and obs.task_id:
        updates["task_id"] = obs.task_id
    if state.kling_created_ms is None and obs.kling_created_ms is not None:
        updates["kling_created_ms"] = obs.kling_created_ms
    latest = _max(state.kling_updated_ms, obs.kling_updated_ms)
    if latest != state.kling_updated_ms and obs.status is state.status:
        updates["kling_updated_ms"] = latest

    if accepts(state.status, obs.status, obs.source):
        updates.update(_arrive(state, obs, msg))
        updates["kling_updated_ms"] = latest
    elif obs.status is state.status:
        updates.update(_merge(state, obs, msg, latest))
    if not updates:
        return Verdict(state, status_changed=False, fields_changed=False)
    after = replace(state, **updates)
    return Verdict(
        after,
        status_changed=after.status is not state.status,
        fields_changed=after != state,
    )


def _arrive(state: TaskState, obs: Observation, msg: str | None) -> dict[str, Any]:
    """The fields set when the task moves to ``obs.status``."""
    new = obs.status
    out: dict[str, Any] = {"status": new, "status_msg": msg}
    if obs.result is not None:
        out["result"] = obs.result
    for name in _CHARGES:
        if getattr(obs, name) is not None:
            out[name] = getattr(obs, name)
    if new is LocalStatus.SUBMITTED and state.submitted_at is None:
        out["submitted_at"] = obs.at
    if new is LocalStatus.PROCESSING:
        if state.processing_at is None:
            out["processing_at"] = obs.at
        if state.kling_processing_ms is None:
            out["kling_processing_ms"] = obs.kling_updated_ms
    if new.is_final:
        out["detected_at"] = obs.at
        out["finished_at"] = (
            obs.kling_updated_ms / 1000.0 if obs.kling_updated_ms is not None else obs.at
        )
        # A finished task is no longer stuck, whatever the engine flagged before.
        out["stuck"] = False
        out["stuck_reason"] = None
    return out


def _merge(
    state: TaskState, obs: Observation, msg: str | None, latest: int | None
) -> dict[str, Any]:
    """The facts a repeat of the current status adds (no status change)."""
    newer = obs.kling_updated_ms is not None and (
        state.kling_updated_ms is None or obs.kling_updated_ms > state.kling_updated_ms
    )
    out: dict[str, Any] = {}
    facts = [("result", obs.result), *((n, getattr(obs, n)) for n in _CHARGES), ("status_msg", msg)]
    for name, value in facts:
        current = getattr(state, name)
        if value is not None and value != current and (current is None or newer):
            out[name] = value
    if (
        state.status is LocalStatus.PROCESSING
        and state.kling_processing_ms is None
        and obs.kling_updated_ms is not None
    ):
        out["kling_processing_ms"] = obs.kling_updated_ms
    if state.status.is_final and newer and latest is not None:
        out["finished_at"] = latest / 1000.0
    return out


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
