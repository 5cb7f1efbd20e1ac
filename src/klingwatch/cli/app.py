"""The Typer application every command module registers on, and how its help reads.

:class:`KlingwatchGroup` is the root command Typer builds from :data:`app`. It does two things
for every command, wherever it is run from (the console script, ``CliRunner``, ``make docs``):

* help without noise: flags show no type, options show a word for their value (``--db URL``,
  ``--limit N``) instead of ``<str>`` / ``TEXT``, and commands are grouped in :data:`PANELS`,
  in the order a newcomer meets them;
* one line, never a traceback, for every mistake, with the exit codes of
  :mod:`klingwatch.cli.exits`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

from klingwatch.cli.exits import run_guarded

__all__ = ["PANELS", "KlingwatchGroup", "app", "command_order"]

#: Help panels of ``klingwatch --help``, in order, each with its commands in order.
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Start here", ("demo", "doctor", "config", "notify")),
    ("Send and follow work", ("submit", "watch", "poll", "track", "retry", "resume", "download")),
    ("See where things stand", ("status", "tasks", "show", "stuck", "spend", "export")),
    ("Run a server", ("serve", "mcp", "sandbox")),
)

#: A word for the value of options that share a name across commands (else the option's name).
_METAVARS = {
    "--db": "URL",
    "--set": "KEY=VALUE",
    "--dir": "DIR",
    "--download": "DIR",
    "--public-url": "URL",
    "--callback-url": "URL",
    "--deadline": "DURATION",
    "--timeout": "SECONDS",
    "--limit": "N",
    "--concurrency": "N",
    "--seed": "N",
    "--time-scale": "FACTOR",
    "--batch": "NAME",
    "--host": "ADDRESS",
}


def command_order() -> list[str]:
    """Every command name in the order of :data:`PANELS`."""
    return [name for _, names in PANELS for name in names]


class _PlainArgument(TyperArgument):
    """An argument shown by its name alone (``FILE``), without ``<str>`` or ``{file}``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"


# Typer ships its own copy of Click, so commands are read through Typer's classes.
def _tidy_param(param: Any) -> None:
    if isinstance(param, TyperOption):
        if param.is_flag:
            param.metavar = ""
        elif param.metavar is None:
            long = max(param.opts, key=len)
            param.metavar = _METAVARS.get(long, long.lstrip("-").upper().replace("-", "_"))
    elif isinstance(param, TyperArgument) and param.metavar is None:
        assert param.name is not None
        param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
        param.__class__ = _PlainArgument


def _tidy(command: Any) -> None:
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        if param is not None:
            _tidy_param(param)
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)


class KlingwatchGroup(TyperGroup):
    """The root command: tidy help, commands in panels, one line for every mistake."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        panel_of = {name: panel for panel, names in PANELS for name in names}
        order = {name: i for i, name in enumerate(command_order())}
        self.commands = dict(
            sorted(self.commands.items(), key=lambda item: order.get(item[0], len(order)))
        )
        for name, command in self.commands.items():
            if name in panel_of and hasattr(command, "rich_help_panel"):
                command.rich_help_panel = panel_of[name]
        _tidy(self)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        def invoke() -> Any:
            return super(KlingwatchGroup, self).main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )

        if not standalone_mode:
            return invoke()
        sys.exit(run_guarded(invoke))


app = typer.Typer(
    name="klingwatch",
    cls=KlingwatchGroup,
    help="Submit, track and collect Kling AI generation tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    add_completion=False,
)
