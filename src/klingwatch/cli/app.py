"""The Typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="klingwatch",
    help="Submit, track and collect Kling AI generation tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    add_completion=False,
)
