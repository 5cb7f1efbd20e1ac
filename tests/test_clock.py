import asyncio

import pytest

from klingwatch.clock import ManualClock, ScaledClock, to_datetime, to_ms


async def test_manual_clock_auto_advances_on_sleep() -> None:
    clock = ManualClock(start=1000.0)
    await clock.sleep(600)
    assert clock.time() == 1600.0
    assert clock.monotonic() == 600.0


async def test_manual_clock_without_auto_advance_wakes_sleepers_when_advanced() -> None:
    clock = ManualClock(start=0.0, auto_advance=False)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(10)
        woke.append(clock.time())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    clock.advance(5)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(5)
    await task
    assert woke == [10.0]


def test_manual_clock_never_goes_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        ManualClock().advance(-1)


def test_scaled_clock_scales_durations_not_timestamps() -> None:
    clock = ScaledClock(0.01)
    assert clock.scaled(60) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="> 0"):
        ScaledClock(0)


def test_ms_round_trip() -> None:
    when = to_datetime(1722769557708)
    assert when is not None
    assert when.tzinfo is not None
    assert to_ms(when) == 1722769557708
    assert to_datetime(None) is None


def test_durations_read_the_way_people_write_them() -> None:
    from klingwatch.clock import format_duration

    assert [format_duration(s) for s in (0, 4.6, 95, 3600, 7300)] == [
        "0s",
        "5s",
        "1m35s",
        "1h00m",
        "2h01m",
    ]
    assert format_duration(3725, precise=True) == "1h02m05s"
    assert format_duration(-3) == "0s"
