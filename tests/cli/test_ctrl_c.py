"""Ctrl-C in ``submit --wait`` and ``watch``: exit 130, one line, and ``watch`` carries on.

Real subprocesses sent a real SIGINT while they follow tasks on a sandbox on a loopback socket;
one of them draws the live view on a pseudo-terminal, as on a person's screen.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from cli_process import CLI, klingwatch, sandbox_env

from klingwatch.kling.products import Family
from klingwatch.sandbox import SandboxConfig, TimingSpec, serve_in_thread
from klingwatch.store import Ledger, LocalStatus

pytestmark = pytest.mark.slow

API_KEY = "ctrl-c-key"
SCALE = 0.05
LINE = "interrupted; klingwatch watch carries on\n"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A sandbox with one video slot (tasks of ~1 s each), the environment to use it, a ledger."""
    config = SandboxConfig(
        api_keys=(API_KEY,),
        time_scale=SCALE,
        straggler_rate=0.0,
        failure_rate=0.0,
        slots={Family.VIDEO: 1},
        durations={"video": TimingSpec(queue_p50=2, queue_p95=4, run_p50=20, run_p95=30)},
    )
    db = tmp_path / "ledger.db"
    with serve_in_thread(config) as url:
        yield sandbox_env(url, db, api_key=API_KEY, scale=SCALE, COLUMNS="100"), db


def _start(
    *args: str, cwd: Path, env: dict[str, str], stdout: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args], cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True
    )


def _wait_for(stream: IO[str] | None, text: str, deadline: float) -> str:
    """Lines of ``stream`` read until one contains ``text``."""
    assert stream is not None
    seen = ""
    while time.monotonic() < deadline:
        line = stream.readline()
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never came; got {seen!r}")


def test_ctrl_c_in_submit_wait_is_one_line_and_exit_130_and_watch_carries_on(
    world: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, db = world
    (tmp_path / "foxes.txt").write_text("".join(f"a fox, take {i}\n" for i in range(4)))
    submit = _start("submit", "foxes.txt", "--wait", cwd=tmp_path, env=env)
    _wait_for(submit.stdout, "queued -> submitted", time.monotonic() + 30)
    submit.send_signal(signal.SIGINT)
    out, err = submit.communicate(timeout=30)

    assert submit.returncode == 130
    assert err == LINE
    assert "Traceback" not in out
    with Ledger.open(f"sqlite:///{db}") as ledger:
        assert not all(t.status.is_final for t in ledger.tasks())  # it really was mid-batch

    watch = klingwatch("watch", "--until-done", cwd=tmp_path, env=env)
    assert watch.returncode == 0, watch.stderr
    assert watch.stderr == "nothing left to follow: succeed 4\n"  # no debug repr of the engine
    with Ledger.open(f"sqlite:///{db}") as ledger:
        assert {t.status for t in ledger.tasks()} == {LocalStatus.SUCCEED}
        assert len(ledger.tasks()) == 4


def test_ctrl_c_in_watch_on_a_terminal_leaves_the_screen_clean(
    world: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = world
    (tmp_path / "cats.txt").write_text("".join(f"a cat, take {i}\n" for i in range(3)))
    queued = klingwatch("submit", "cats.txt", cwd=tmp_path, env=env)
    assert queued.returncode == 0, queued.stderr
    screen, terminal = pty.openpty()
    watch = _start("watch", cwd=tmp_path, env={**env, "TERM": "xterm-256color"}, stdout=terminal)
    os.close(terminal)
    drawn = _read_until(screen, b"latest changes", time.monotonic() + 30)
    watch.send_signal(signal.SIGINT)
    err = watch.communicate(timeout=30)[1]
    drawn += _read_until(screen, None, time.monotonic() + 5)
    os.close(screen)

    assert watch.returncode == 130
    assert err == LINE
    text = drawn.decode(errors="replace")
    assert "Traceback" not in text
    assert "KeyboardInterrupt" not in text
    assert "\x1b[?25l" in text  # the live view hid the cursor while drawing...
    assert text.rstrip("\r\n").endswith("\x1b[?25h")  # ...and gave it back, last of all


def _read_until(fd: int, marker: bytes | None, deadline: float) -> bytes:
    """What the terminal shows until ``marker`` appears (``None``: until the writer is gone)."""
    got = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed
            return got
        if not chunk:
            return got
        got += chunk
        if marker is not None and marker in got:
            return got
    if marker is not None:
        raise AssertionError(f"{marker!r} never appeared; got {got[-500:]!r}")
    return got
