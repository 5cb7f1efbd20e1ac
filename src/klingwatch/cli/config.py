"""``klingwatch config``: the effective settings and where each came from."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from klingwatch.cli.app import app
from klingwatch.settings import Settings


@app.command("config")
def config_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show every setting's effective value and where it came from.

    Precedence: flags > environment > .env > klingwatch.toml > defaults. Secrets are masked.
    """
    rows = Settings.explain()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"name": r.name, "env": r.env, "value": r.value, "origin": r.origin}
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    table = Table(title="klingwatch settings (flags > environment > .env > klingwatch.toml)")
    table.add_column("setting")
    table.add_column("environment variable")
    table.add_column("value")
    table.add_column("from")
    for r in rows:
        value = "[dim]-[/dim]" if r.value is None else r.value
        origin = "[dim]default[/dim]" if r.origin == "default" else f"[bold]{r.origin}[/bold]"
        table.add_row(r.name, r.env, value, origin)
    Console().print(table)
