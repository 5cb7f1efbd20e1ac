"""The spend ledger and budget caps, as operations: what was spent, and how much may be.

:class:`SpendOperations` is mixed into :class:`~klingwatch.operations.Operations`; every face
(the CLI's ``spend`` and ``resume --raise-cap``, the dashboard, ``/metrics``, the MCP server)
asks it the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from klingwatch.errors import ConfigurationError
from klingwatch.operations.results import SPEND_KEYS, BudgetResult, SpendReport, SpendRow
from klingwatch.store.async_ledger import AsyncLedger
from klingwatch.store.budget import BatchBudget
from klingwatch.store.spend import SpendLine

__all__ = [
    "SpendOperations",
    "SpendRequestError",
    "budget_result",
    "parse_cap",
    "summarize_spend",
]


class SpendRequestError(ConfigurationError):
    """A spend report or a budget cap asked wrongly: an unknown grouping, an unknown batch, a
    cap that is not a positive number. Nothing was changed."""


def _grouping(by: Sequence[str]) -> tuple[str, ...]:
    wanted = [k.strip().lower() for k in by if k.strip()]
    unknown = [k for k in wanted if k not in SPEND_KEYS]
    if unknown:
        raise SpendRequestError(
            f"cannot group spend by {', '.join(unknown)}: use any of {', '.join(SPEND_KEYS)}"
        )
    return tuple(k for k in SPEND_KEYS if k in wanted)


def summarize_spend(lines: Iterable[SpendLine], by: Sequence[str]) -> SpendReport:
    """Sum ``lines`` per group of ``by`` (a pure function; :meth:`SpendOperations.spend`)."""
    keys = _grouping(by)
    groups: dict[tuple[str | None, ...], list[SpendLine]] = defaultdict(list)
    every: list[SpendLine] = []
    for line in lines:
        groups[tuple(getattr(line, k) for k in keys)].append(line)
        every.append(line)
    rows = [
        _row(dict(zip(keys, group, strict=True)), members)
        for group, members in sorted(groups.items(), key=lambda item: _sort_key(item[0]))
    ]
    return SpendReport(by=keys, rows=rows, total=_row({}, every))


def _sort_key(group: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, value or "") for value in group)


def _row(keys: dict[str, str | None], lines: list[SpendLine]) -> SpendRow:
    cash: dict[str | None, Decimal] = defaultdict(Decimal)
    for line in lines:
        if line.cash_amount is not None:
            cash[line.cash_currency] += line.cash_amount
    return SpendRow(
        keys=keys,
        tasks=len(lines),
        units_estimated=sum((x.units_estimated or Decimal(0) for x in lines), Decimal(0)),
        units_spent=sum((x.units_spent or Decimal(0) for x in lines), Decimal(0)),
        cash=tuple(sorted(cash.items(), key=lambda item: item[0] or "")),
        charged=sum(1 for x in lines if x.units_spent is not None or x.cash_amount is not None),
    )


def budget_result(budget: BatchBudget, freed: int = 0) -> BudgetResult:
    """The ledger's view of a batch's budget, as the operations hand it back."""
    return BudgetResult(
        batch=budget.batch,
        max_units=budget.max_units,
        sent_estimate=budget.committed,
        units_estimated=budget.estimated,
        held=budget.held,
        freed=freed,
    )


class SpendOperations:
    """Spend and budget operations (mixed into :class:`~klingwatch.operations.Operations`)."""

    ledger: AsyncLedger

    async def spend(
        self,
        by: Sequence[str] = ("batch",),
        batch: str | None = None,
        since_ms: int | None = None,
    ) -> SpendReport:
        """Units estimated and spent, and cash charged, summed per group of ``by`` (any of
        ``batch``, ``product``, ``model``, ``mode``, ``day``), of one ``batch`` or all, of
        tasks that spent at or after ``since_ms`` (epoch milliseconds) if given.

        A task's day is the UTC day it finished (else was sent, else queued). Raises
        :class:`SpendRequestError` for an unknown grouping.
        """
        keys = _grouping(by)
        since = None if since_ms is None else since_ms / 1000.0
        lines = await self.ledger.read(lambda ledger: ledger.spend_lines(batch=batch, since=since))
        return summarize_spend(lines, keys)

    async def budget(self, batch: str) -> BudgetResult:
        """The budget cap of ``batch`` and what counts against it."""
        found = await self.ledger.budget(batch)
        if found is None:
            raise SpendRequestError(f"no batch {batch!r} in the ledger (see `klingwatch status`)")
        return budget_result(found)

    async def set_cap(self, batch: str, max_units: Decimal | int | str | None) -> BudgetResult:
        """Set the budget cap of an existing ``batch`` (``None`` removes it): no create whose
        estimate would take the batch's sent estimates past it is sent. Raising it frees the
        tasks it held that now fit; they are sent by the running engine (or the next
        ``watch``)."""
        cap = parse_cap(max_units)
        before = await self.ledger.budget(batch)
        if before is None:
            raise SpendRequestError(f"no batch {batch!r} in the ledger (see `klingwatch status`)")
        after = await self.ledger.set_cap(batch, cap)
        return budget_result(after, freed=max(0, before.held - after.held))


def parse_cap(value: Decimal | int | str | None) -> Decimal | None:
    """A cap as given (``"120"``, ``120``, ``Decimal``); ``None`` for none. Raises
    :class:`SpendRequestError` for anything that is not a positive number."""
    if value is None:
        return None
    try:
        cap = Decimal(str(value).strip())
    except ArithmeticError:
        raise SpendRequestError(f"a budget cap is a number of units, not {value!r}") from None
    if not cap.is_finite() or cap <= 0:
        raise SpendRequestError(f"a budget cap must be a positive number of units, not {value}")
    return cap
