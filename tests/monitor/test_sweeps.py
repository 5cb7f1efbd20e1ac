"""The sweep budget and the callback-mode pick: pure functions."""

from __future__ import annotations

import pytest

from klingwatch.monitor.sweeps import SweepBudget, callback_overdue, window_start


def test_the_sweep_interval_grows_with_the_pages_a_sweep_costs() -> None:
    budget = SweepBudget(base=5.0, per=500, minimum=2.0, maximum=60.0)
    assert budget.interval(1) == 5.0
    assert budget.interval(500) == 5.0
    assert budget.interval(501) == 10.0  # two list pages: half as often
    assert budget.interval(2400) == 25.0
    assert budget.interval(100_000) == 60.0  # never longer than the maximum


def test_while_tasks_wait_for_a_slot_sweeps_come_sooner_never_later() -> None:
    budget = SweepBudget()
    assert budget.interval(300, waiting=True) == 2.0
    assert budget.interval(1200, waiting=True) == 6.0  # three pages
    assert budget.interval(300, waiting=False) == 6.0
    # A budget already shorter than the waiting one is kept.
    assert SweepBudget(base=1.0, minimum=0.5).interval(10, waiting=True) == 1.0


def test_the_sweep_interval_stays_within_its_bounds() -> None:
    assert SweepBudget(base=0.5, minimum=2.0).interval(10) == 2.0
    assert SweepBudget(base=5.0, maximum=3.0, minimum=1.0).interval(10) == 3.0
    assert SweepBudget().interval(0) == 6.0  # nothing active: as for one page


@pytest.mark.parametrize(
    "kw", [{"minimum": 0.0}, {"minimum": 10.0, "maximum": 5.0}, {"base": 0.0}, {"per": 0}]
)
def test_a_nonsensical_budget_is_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="sweep budget"):
        SweepBudget(**kw)  # type: ignore[arg-type]


def test_the_window_starts_a_margin_before_the_oldest_active_task() -> None:
    assert window_start([5_000_000, 4_000_000, 6_000_000], margin_ms=60_000) == 3_940_000
    assert window_start([], margin_ms=60_000) is None
    assert window_start([10], margin_ms=60_000) == 0


def test_a_callback_is_overdue_only_past_the_expected_time_and_the_margin() -> None:
    assert not callback_overdue(100.0, 50.0, now=170.0, margin=30.0)
    assert not callback_overdue(100.0, 50.0, now=180.0, margin=30.0)
    assert callback_overdue(100.0, 50.0, now=180.5, margin=30.0)
    assert callback_overdue(None, 50.0, now=0.0, margin=30.0)  # unknown start: read it
