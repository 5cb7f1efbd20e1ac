"""``klingwatch`` as a user runs it: a real process, its stderr and its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The console script's entry point, run by this interpreter (the test's own environment).
CLI = [sys.executable, "-c", "from klingwatch.cli import main; main()"]


def console_script() -> list[str]:
    """The installed ``klingwatch`` script beside this interpreter (else ``-m klingwatch.cli``):
    what a user starts, and what a test sends signals to."""
    script = Path(sys.executable).with_name("klingwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "klingwatch.cli"]


def sandbox_env(url: str, db: Path, *, api_key: str, scale: float, **extra: str) -> dict[str, str]:
    """The environment of a klingwatch pointed at a sandbox, with a SQLite ledger at ``db``."""
    return {
        **os.environ,
        "KLING_API_KEY": api_key,
        "KLING_API_BASE": url,
        "KLINGWATCH_DB": f"sqlite:///{db}",
        "KLINGWATCH_TIME_SCALE": str(scale),
        **extra,
    }


def klingwatch(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``klingwatch ARGS`` in ``cwd`` to its end (``env`` on top of this one's, wide output)."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr (fails on a traceback or anything more)."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]
