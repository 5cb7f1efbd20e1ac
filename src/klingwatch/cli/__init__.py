"""The terminal face: ``klingwatch COMMAND``.

Each command lives in its own module and registers on :data:`klingwatch.cli.app.app`. ``main``
turns every klingwatch error (``KlingError``, ``LedgerError``) into one clear line on stderr
(exit code 3), never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from klingwatch import __version__
from klingwatch.cli.app import app
from klingwatch.kling.errors import KlingError
from klingwatch.store.errors import LedgerError

# Each command module registers its commands on `app` when imported. To add a command module,
# add its name here (one entry per module, one module per command or group of commands).
COMMAND_MODULES = (
    "config",
    "sandbox",
    "track",
    "watch",
    "status",
    "tasks",
    "show",
    "stuck",
    "export",
    "serve",
    "submit",
    "retry",
    "resume",
    "download",
    "poll",
    "doctor",
    "demo",
)
for _name in COMMAND_MODULES:
    importlib.import_module(f"klingwatch.cli.{_name}")

__all__ = ["COMMAND_MODULES", "EXIT_ERROR", "app", "main"]

#: Exit code for an error klingwatch could explain (bad credentials, unreachable server, ...).
EXIT_ERROR = 3


def _version(value: bool) -> None:
    if value:
        typer.echo(f"klingwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Submit, track and collect Kling AI generation tasks."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except (KlingError, LedgerError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
