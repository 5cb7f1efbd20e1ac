"""Fixtures shared by every test module.

Tests are hermetic: the developer's own Kling credentials and klingwatch settings never leak in.
"""

from __future__ import annotations

import os

import pytest

# Settings the test harness itself uses; everything else named KLING*/KLINGWATCH_* is cleared.
_KEEP = {"KLINGWATCH_TEST_PG_URL", "KLINGWATCH_SKIP_PG"}


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("KLING_", "KLINGWATCH_")) and name not in _KEEP:
            monkeypatch.delenv(name)
