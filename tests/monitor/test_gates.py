"""Gates: the pause flag and learned slot limits, as the ledger keeps them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from klingwatch.clock import ManualClock
from klingwatch.kling.products import Family
from klingwatch.monitor import gates
from klingwatch.store import Ledger


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = Ledger.open(ledger_url, clock=ManualClock())
    yield led
    led.close()


def test_pause_and_resume_round_trip_with_the_alert(ledger: Ledger) -> None:
    state = gates.PauseState(reason="Account balance not enough", at=1000.0, code=1102)
    gates.pause(ledger, state)
    assert gates.pause_state(ledger) == state
    [alert] = ledger.alerts()
    assert alert.kind == gates.PAUSE_ALERT
    assert alert.message == (
        "submissions paused (code 1102): Account balance not enough; "
        "run `klingwatch resume` once it is fixed"
    )
    assert gates.resume(ledger) == state
    assert gates.pause_state(ledger) is None
    assert ledger.alerts() == []
    assert gates.resume(ledger) is None


def test_an_auto_resuming_pause_says_when(ledger: Ledger) -> None:
    gates.pause(ledger, gates.PauseState(reason="empty", at=50.0, code=1102, resume_after=600))
    state = gates.pause_state(ledger)
    assert state is not None
    assert state.resume_at == 650.0
    assert "resumes by itself in 600 s" in ledger.alerts()[0].message


def test_a_pause_flag_nobody_can_read_still_pauses(ledger: Ledger) -> None:
    ledger.set_meta(gates.PAUSE_KEY, "{garbled")
    state = gates.pause_state(ledger)
    assert state is not None
    assert "paused" in state.reason


def test_learned_limits_only_go_down_and_can_be_forgotten(ledger: Ledger) -> None:
    assert gates.learn_slots(ledger, "video", 0) is None
    assert gates.learn_slots(ledger, "video", 6) == 6
    assert gates.learn_slots(ledger, "video", 9) == 6
    assert gates.learn_slots(ledger, "video", 4) == 4
    assert gates.forget_slots(ledger) == {"video": 4}
    assert gates.learned_slots(ledger, "video") is None


def test_every_pack_family_keeps_its_own_learned_limit(ledger: Ledger) -> None:
    for n, family in enumerate(Family, start=2):
        gates.learn_slots(ledger, family.value, n)
    assert gates.learned_limits(ledger) == {"video": 2, "image": 3, "try_on": 4}
    assert gates.forget_slots(ledger) == {"video": 2, "image": 3, "try_on": 4}
    assert gates.learned_limits(ledger) == {}
