"""SandboxConfig: validation with one-line reasons, defaults, timing overrides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, TimingSpec


def test_defaults_are_quiet_and_open() -> None:
    config = SandboxConfig()
    assert config.slots == {Family.VIDEO: 5, Family.IMAGE: 10, Family.TRY_ON: 2}
    assert config.auth_open
    assert not config.chaos.enabled
    assert (config.not_found, config.external_id_lookup, config.list_order) == (
        "1201",
        "both",
        "newest",
    )


def test_slots_given_for_one_family_keep_the_others() -> None:
    config = SandboxConfig(slots={"video": 2})
    assert config.slots[Family.VIDEO] == 2
    assert config.slots[Family.IMAGE] == 10


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"webhook_secret": "secret"}, "whsec_"),
        ({"slots": {"video": 0}}, "at least 1"),
        ({"failure_rate": 2}, "less than or equal to 1"),
        ({"no_such_knob": 1}, "Extra inputs"),
    ],
)
def test_bad_values_are_refused(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        SandboxConfig(**fields)


def test_the_most_specific_timing_override_wins() -> None:
    fast = TimingSpec(queue_p50=1, queue_p95=1, run_p50=2, run_p95=2)
    slow = TimingSpec(queue_p50=9, queue_p95=9, run_p50=90, run_p95=90)
    family = TimingSpec(queue_p50=5, queue_p95=5, run_p50=50, run_p95=50)
    config = SandboxConfig(
        durations={"text2video:kling-v2-6:pro": slow, "text2video": fast, "video": family}
    )
    assert config.timing_for("text2video", "kling-v2-6", "pro", Family.VIDEO) == slow
    assert config.timing_for("text2video", "kling-v2-6", "std", Family.VIDEO) == fast
    assert config.timing_for("image2video", None, None, Family.VIDEO) == family
    assert config.timing_for("image-generation", None, None, Family.IMAGE) is None
