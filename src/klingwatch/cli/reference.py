"""The CLI reference (``docs/cli.md``), generated from the commands themselves.

``python -m klingwatch.cli.reference > docs/cli.md`` (or ``make docs``) rewrites it; a test fails
when the file and the commands disagree, so the reference cannot drift.
"""

from __future__ import annotations

from typing import Any

import typer.main

from klingwatch.cli import app
from klingwatch.cli.app import PANELS
from klingwatch.cli.exits import exit_table_markdown

__all__ = ["render"]


# Typer ships its own copy of click, so its objects are read by duck typing, not isinstance.


def _option_row(param: Any) -> str:
    help_text = (getattr(param, "help", None) or "").replace("\n", " ").replace("|", "\\|")
    if param.param_type_name == "option":
        names = ", ".join(f"`{n}`" for n in [*param.opts, *param.secondary_opts])
        value = f"`{param.metavar}`" if param.metavar else ""
        default = param.default
        shown = ""
        if param.show_default is not False and default not in (None, False, (), []):
            shown = f" (default: `{default}`)"
        return f"| {names} | {value} | {help_text}{shown} |"
    return f"| `{param.metavar or str(param.name).upper()}` | | {help_text or 'argument'} |"


def _command_section(name: str, command: Any) -> list[str]:
    ctx = command.context_class(command, info_name=f"klingwatch {name}")
    lines = [f"### `klingwatch {name}`", ""]
    lines += ["```", command.get_usage(ctx).strip(), "```", ""]
    if command.help:
        lines += [command.help.strip(), ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        lines += ["| option | value | meaning |", "|---|---|---|"]
        lines += [_option_row(p) for p in params]
        lines.append("")
    return lines


def render() -> str:
    """The whole reference as Markdown: the exit codes, then every command, panel by panel."""
    root: Any = typer.main.get_command(app)
    ctx = root.context_class(root, info_name="klingwatch")
    lines = [
        "# Command-line reference",
        "",
        "Generated from the commands by `python -m klingwatch.cli.reference`; do not edit by hand.",
        "Every command takes `--help`. A mistake prints one line on stderr, never a traceback.",
        "",
        "## Exit codes",
        "",
        "The same for every command:",
        "",
        exit_table_markdown(),
        "",
    ]
    for panel, names in PANELS:
        lines += [f"## {panel}", ""]
        for name in names:
            command = root.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            lines += _command_section(name, command)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover - exercised by `make docs`
    print(render(), end="")
