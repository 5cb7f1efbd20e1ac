"""Replica identity and how long a lease runs on each kind of clock."""

from __future__ import annotations

from klingwatch.clock import ManualClock, RealClock, ScaledClock
from klingwatch.monitor.replica import MIN_LEASE_REAL, lease_span, replica_id


def test_a_configured_replica_id_is_used_else_each_engine_gets_its_own() -> None:
    assert replica_id("blue") == "blue"
    assert replica_id() != replica_id()


def test_a_lease_is_scaled_like_every_engine_time_on_a_real_or_manual_clock() -> None:
    assert lease_span(RealClock(), 60) == 60
    assert lease_span(ManualClock(), 2) == 2
    assert lease_span(ScaledClock(2.0), 60) == 120


def test_a_compressed_clock_never_shrinks_a_lease_below_the_real_floor() -> None:
    # 60 nominal s at scale 0.02 would be 1.2 real s: shorter than a create on a loaded machine.
    assert lease_span(ScaledClock(0.02), 60) == MIN_LEASE_REAL
    assert lease_span(ScaledClock(0.5), 60) == 30
    # A lease configured shorter than the floor keeps its own length.
    assert lease_span(ScaledClock(0.02), 2) == 2
