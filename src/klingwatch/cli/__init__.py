"""The terminal face: ``klingwatch COMMAND``.

Each command lives in its own module and registers on :data:`klingwatch.cli.app.app`. Every
mistake a user can make ends in one line on stderr and an exit code of
:mod:`klingwatch.cli.exits` (the same for every command), never a traceback.
"""

from __future__ import annotations

import importlib

import typer

from klingwatch import __version__
from klingwatch.cli.app import app
from klingwatch.cli.exits import ExitCode
from klingwatch.settings import toml_warnings

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
    "spend",
    "export",
    "serve",
    "mcp",
    "submit",
    "retry",
    "resume",
    "download",
    "poll",
    "doctor",
    "demo",
    "notify",
)
for _name in COMMAND_MODULES:
    importlib.import_module(f"klingwatch.cli.{_name}")

__all__ = ["COMMAND_MODULES", "EXIT_ERROR", "app", "main"]

#: Exit code for an error klingwatch could explain (bad credentials, unreachable server, ...).
EXIT_ERROR = ExitCode.ERROR


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
    # Before every command: a misspelled key in klingwatch.toml would otherwise be ignored
    # without a word. (A file that does not parse is the settings' error, where they are read.)
    for warning in toml_warnings():
        typer.echo(f"warning: {warning}", err=True)


def main() -> None:
    """Console-script entry point (exits with a code of :class:`~klingwatch.cli.exits.ExitCode`)."""
    app(prog_name="klingwatch")
