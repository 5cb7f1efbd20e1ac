"""Option parsing shared by commands: durations such as ``90s``, ``30m``, ``2h``, ``1h30m``,
and budget caps.

Use :func:`parse_duration` where a command wants to report a bad value itself, or
:func:`duration_param` as a Typer ``parser=`` to let Click report it::

    deadline: float | None = typer.Option(None, "--deadline", parser=duration_param)
"""

from __future__ import annotations

import re
from decimal import Decimal

import typer

from klingwatch.operations.spend import SpendRequestError, parse_cap

__all__ = ["DURATION_HELP", "cap_option", "duration_param", "parse_duration"]

DURATION_HELP = "a duration such as 90s, 30m, 2h or 1h30m (a bare number is seconds)"

_UNITS = {"d": 86_400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``90s``, ``30m``, ``2h``, ``1h30m``, ``1.5h``, ``45``).

    Units are ``d``, ``h``, ``m``, ``s`` and ``ms``, largest first, each at most once; a bare
    number is seconds. Raises :class:`ValueError` with a message fit to show a user.
    """
    raw = str(text).strip().lower().replace(" ", "")
    if not raw:
        raise ValueError(f"empty duration: expected {DURATION_HELP}")
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if seconds < 0 or seconds != seconds or seconds == float("inf"):
            raise ValueError(f"{text!r} is not a duration: expected {DURATION_HELP}")
        return seconds
    total, pos, order = 0.0, 0, list(_UNITS)
    last = -1
    for match in _PART.finditer(raw):
        unit_rank = order.index(match.group(2))
        if match.start() != pos or unit_rank <= last:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos, last = match.end(), unit_rank
    if pos != len(raw) or pos == 0:
        raise ValueError(f"{text!r} is not a duration: expected {DURATION_HELP}")
    return total


def duration_param(text: str) -> float:
    """:func:`parse_duration` for Typer's ``parser=``: a bad value is a usage error."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def cap_option(text: str | None, *, hint: str = "--max-units") -> Decimal | None:
    """A budget cap option (``--max-units 120``); a bad value is a usage error."""
    try:
        return parse_cap(text)
    except SpendRequestError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None
