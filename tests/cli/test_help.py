"""``--help`` reads like a manual: no type noise, commands grouped in a newcomer's order."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from klingwatch.cli import app
from klingwatch.cli.app import PANELS, command_order


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _commands() -> list[str]:
    root = typer.main.get_command(app)
    return list(root.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["", *command_order()])
def test_help_shows_no_type_names(command: str) -> None:
    text = _help(*command.split())
    noise = re.findall(r"<[a-z][a-z_\[\]| ]*>|\b(?:TEXT|INTEGER|FLOAT|BOOLEAN|PATH)\b", text)
    assert noise == [], f"klingwatch {command} --help shows {noise}"
    assert "{" not in text.split("\n\n")[1]  # the usage line: FILE, not {file}


def test_options_name_their_values() -> None:
    text = _help("tasks")
    assert re.search(r"--db +URL", text)
    assert re.search(r"--limit +-n +N", text)
    assert re.search(r"--json +Print JSON", text)  # a flag takes no value


def test_commands_are_grouped_in_panels_in_order() -> None:
    text = _help()
    panels = [panel for panel, _ in PANELS]
    found = [title for title in re.findall(r"╭─ (.+?) ─", text) if title in panels]
    assert found == panels
    listed = re.findall(r"^│ (\w+) ", text, re.M)
    assert listed == command_order()
    assert sorted(command_order()) == sorted(_commands())  # every command in a panel, once
