"""What the operations hand back: plain, frozen records every face renders its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from klingwatch.monitor.eta import Eta
from klingwatch.monitor.gates import PauseState
from klingwatch.store import LocalStatus, TaskRecord
from klingwatch.store.budget import format_units, hold_message

__all__ = [
    "SPEND_KEYS",
    "BatchReport",
    "BudgetResult",
    "NotifyResult",
    "ResumeResult",
    "RetryResult",
    "SpendReport",
    "SpendRow",
    "TrackResult",
]

#: What a spend report can be grouped by, in the order its columns are shown.
SPEND_KEYS = ("batch", "product", "model", "mode", "day")


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else format_units(value)


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One group of a spend report (or its total, with no keys)."""

    #: The group's value of each key it was grouped by (``None``: the tasks have none, as a
    #: legacy task without ``model_name``), in :data:`SPEND_KEYS` order.
    keys: dict[str, str | None]
    tasks: int
    #: Summed estimates made when the tasks were queued.
    units_estimated: Decimal
    #: Summed units Kling reported deducted (``final_unit_deduction``), for the tasks that
    #: reported it.
    units_spent: Decimal
    #: Cash charged, ``(currency, amount)`` per currency (``None`` currency: not named by Kling).
    cash: tuple[tuple[str | None, Decimal], ...] = ()
    #: Tasks that reported a charge (units or cash): the rest have not ended, or were free.
    charged: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: amounts as decimal strings."""
        return {
            **self.keys,
            "tasks": self.tasks,
            "charged": self.charged,
            "units_estimated": format_units(self.units_estimated),
            "units_spent": format_units(self.units_spent),
            "cash": [{"currency": c, "amount": _amount(a)} for c, a in self.cash],
        }


@dataclass(frozen=True, slots=True)
class SpendReport:
    """What :meth:`Operations.spend <klingwatch.operations.Operations.spend>` summed."""

    #: The keys grouped by, in :data:`SPEND_KEYS` order.
    by: tuple[str, ...]
    rows: list[SpendRow]
    total: SpendRow

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class BudgetResult:
    """A batch's budget cap and what counts against it (:meth:`Operations.budget`,
    :meth:`Operations.set_cap`)."""

    batch: str
    #: The cap in units; ``None``: no cap.
    max_units: Decimal | None
    #: Summed estimates of the tasks sent (what the cap is checked against).
    sent_estimate: Decimal
    #: Summed estimates of every task of the batch.
    units_estimated: Decimal
    #: Queued tasks the cap holds back.
    held: int
    #: Held tasks the last change freed (``set_cap``).
    freed: int = 0

    @property
    def hold_reason(self) -> str | None:
        """What held tasks say ("held: budget cap 120 units, 118 sent"), when any are held."""
        if self.max_units is None or not self.held:
            return None
        return hold_message(self.max_units, self.sent_estimate, self.units_estimated)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "max_units": _amount(self.max_units),
            "sent_estimate": format_units(self.sent_estimate),
            "units_estimated": format_units(self.units_estimated),
            "held": self.held,
            "freed": self.freed,
            "hold_reason": self.hold_reason,
        }


@dataclass(frozen=True, slots=True)
class TrackResult:
    """Tasks adopted by :meth:`Operations.track <klingwatch.operations.Operations.track>`."""

    #: Each task Kling knows, as recorded in the ledger (in the order asked).
    tracked: list[TaskRecord] = field(default_factory=list)
    #: Ids Kling does not know (nothing was recorded for them).
    missing: list[str] = field(default_factory=list)
    #: Requests sent to Kling to read them.
    requests: int = 0


@dataclass(frozen=True, slots=True)
class RetryResult:
    """What :meth:`Operations.retry <klingwatch.operations.Operations.retry>` queued."""

    #: ``(the task retried, the new task queued for it)``.
    queued: list[tuple[TaskRecord, TaskRecord]] = field(default_factory=list)
    #: Tasks picked by a filter but already retried once (retry the newest attempt instead).
    skipped: list[TaskRecord] = field(default_factory=list)
    #: With ``dry_run``: the tasks that would be queued again (nothing was written).
    would_retry: list[TaskRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ResumeResult:
    """What :meth:`Operations.resume <klingwatch.operations.Operations.resume>` cleared."""

    #: The pause that was in force (``None``: sending was not paused).
    was: PauseState | None
    #: Learned slot limits forgotten (with ``forget_slots``), by pack family.
    forgotten: dict[str, int]
    #: Tasks waiting to be sent now.
    queued: int


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """One target of :meth:`Operations.notify_test <klingwatch.operations.Operations.
    notify_test>`: an alert URL (``KLINGWATCH_NOTIFY``) or the events URL."""

    #: ``alerts`` or ``events``
    kind: str
    #: the URL with its secrets elided
    target: str
    ok: bool
    #: what went wrong, when it did not go
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BatchReport:
    """Where one batch stands (:meth:`Operations.batch_report`): the dashboard's batch page."""

    name: str
    created_at: float
    download_dir: str | None
    counts: dict[LocalStatus, int]
    eta: Eta
    budget: BudgetResult
    #: Units estimated and spent, cash charged, for the whole batch and per day.
    spend: SpendRow
    spend_by_day: list[SpendRow]
    #: ``(reason, tasks)`` of its failed and rejected tasks, most common first.
    failure_reasons: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(n for status, n in self.counts.items() if status.is_final)
