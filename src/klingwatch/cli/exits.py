"""Exit codes, the same for every command, and the one place mistakes become one line.

=====  =========================================================================================
code   meaning
=====  =========================================================================================
0      done: everything asked for happened
1      done, but some of the work failed: a task failed (``poll``), a file was not downloaded,
       a ``doctor`` check failed, a task id Kling does not know (``track``), a test message
       not delivered (``notify --test``)
2      the command line is wrong: an unknown command or option, a missing argument, a bad
       value; nothing was done
3      klingwatch stopped and said why in one line: a setting, the credentials, the ledger, a
       batch file with invalid lines, Kling unreachable or refusing, a port in use, sending
       paused by Kling, a full disk
4      ``poll``: the deadline passed before the task finished
130    interrupted by Ctrl-C (143: SIGTERM); the ledger is consistent, ``klingwatch watch``
       carries on
=====  =========================================================================================

:func:`run_guarded` runs a command and turns each of these outcomes into its code, with one line
on stderr (``error: ...``, ``interrupted ...``), never a traceback. A bug is still a traceback:
hiding it would help nobody.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import typer

from klingwatch.errors import KlingwatchError

__all__ = ["EXIT_TABLE", "ExitCode", "Interrupted", "exit_table_markdown", "run_guarded"]


class ExitCode(IntEnum):
    """What a klingwatch process's exit status means (see the module docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    ERROR = 3
    DEADLINE = 4
    INTERRUPTED = 130


#: (code, meaning) for the README and docs/cli.md.
EXIT_TABLE: tuple[tuple[ExitCode, str], ...] = (
    (ExitCode.OK, "done: everything asked for happened"),
    (
        ExitCode.FAILED,
        "done, but some of the work failed: a task failed (`poll`), a file was not downloaded "
        "(`download`), a check failed (`doctor`), a task id Kling does not know (`track`), "
        "no task succeeded (`demo`), a test message not delivered (`notify --test`)",
    ),
    (
        ExitCode.USAGE,
        "the command line is wrong: an unknown command or option, a missing argument, a bad "
        "value; nothing was done",
    ),
    (
        ExitCode.ERROR,
        "klingwatch stopped and said why in one line: a setting, the credentials, the ledger, "
        "a batch file with invalid lines, Kling unreachable or refusing, a port in use, "
        "sending paused by Kling (`submit --wait`), a full disk",
    ),
    (ExitCode.DEADLINE, "`poll --deadline` passed before the task finished"),
    (
        ExitCode.INTERRUPTED,
        "interrupted by Ctrl-C (143: by SIGTERM); the ledger is consistent and "
        "`klingwatch watch` carries on",
    ),
)

#: The line an interrupted engine command prints.
CARRIES_ON = "interrupted; klingwatch watch carries on"


class Interrupted(Exception):
    """The user stopped a command (SIGINT, SIGTERM) after it left everything consistent."""

    def __init__(self, sig: int = signal.SIGINT, message: str = CARRIES_ON) -> None:
        super().__init__(message)
        self.signal = sig

    @property
    def exit_code(self) -> int:
        # The shell's convention, 128 + the signal: 130 for Ctrl-C, 143 for SIGTERM.
        return 128 + int(self.signal)


def exit_table_markdown() -> str:
    """:data:`EXIT_TABLE` as a Markdown table."""
    rows = [f"| {int(code)} | {meaning} |" for code, meaning in EXIT_TABLE]
    return "\n".join(["| exit code | meaning |", "|---|---|", *rows])


def _say(line: str) -> None:
    typer.echo(line, err=True)


#: Click's exit code for a usage error (Typer ships its own Click; its classes are not public).
_CLICK_USAGE = 2


def _usage_hint(exc: typer.TyperException) -> str:
    ctx = getattr(exc, "ctx", None)
    return "" if ctx is None else f" (see {ctx.command_path} --help)"


def run_guarded(invoke: Callable[[], Any]) -> int:
    """Run ``invoke`` (a Click ``main`` in non-standalone mode); return the exit code.

    Every outcome a user can cause is one line on stderr: a usage error (2), an error klingwatch
    explains (3), an interruption (130). Click's own exit codes pass through.
    """
    try:
        result = invoke()
    except typer.TyperException as exc:  # Click's own: a usage error, a file it cannot open
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())  # `klingwatch` alone: the help, as a usage error
            return ExitCode.USAGE
        code = int(getattr(exc, "exit_code", ExitCode.USAGE))
        hint = _usage_hint(exc) if code == _CLICK_USAGE else ""
        _say(f"error: {exc.format_message()}{hint}")
        return code
    except Interrupted as exc:
        _say(str(exc))
        return exc.exit_code
    except KlingwatchError as exc:  # anything klingwatch explains: Kling, the ledger, local setup
        _say(f"error: {exc}")
        return ExitCode.ERROR
    except (KeyboardInterrupt, asyncio.CancelledError, typer.Abort):  # Ctrl-C, however it landed
        _say("interrupted")
        return ExitCode.INTERRUPTED
    if isinstance(result, int) and not isinstance(result, bool):
        if result == ExitCode.INTERRUPTED:
            # Typer turns a KeyboardInterrupt into a bare exit 130; say what happened.
            _say("interrupted")
        return result
    return ExitCode.OK
