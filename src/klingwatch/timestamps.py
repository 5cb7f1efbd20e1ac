"""How klingwatch writes an instant for the world outside Python: twice, named for what it is.

Every instant in the JSON API, in ``export`` (JSON and CSV) and in the read commands' ``--json``
appears as a pair of fields, ``<name>_ms`` (integer Unix epoch milliseconds, UTC; Kling's own unit)
and ``<name>_iso`` (ISO-8601 in UTC with milliseconds, ``2026-01-01T00:00:00.000Z``), both ``null``
when the instant is unknown. The ISO text is made from the rounded milliseconds, so the two fields
of a pair always name the same instant. Durations are not instants: they are seconds, in fields
ending ``_seconds``.

>>> stamp("queued_at", 1767225600.0004)
{'queued_at_ms': 1767225600000, 'queued_at_iso': '2026-01-01T00:00:00.000Z'}
>>> stamp_ms("kling_updated_at", None)
{'kling_updated_at_ms': None, 'kling_updated_at_iso': None}
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["MAX_EPOCH_MS", "epoch_ms", "iso_from_ms", "stamp", "stamp_ms"]

#: 9999-12-31T23:59:59.999Z, the last instant ISO-8601's four-digit years can write.
MAX_EPOCH_MS = 253_402_300_799_999


def epoch_ms(seconds: float | None) -> int | None:
    """Unix seconds (the ledger's unit) as integer epoch milliseconds."""
    return None if seconds is None else round(seconds * 1000)


def iso_from_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC text with milliseconds and a ``Z``."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stamp_ms(name: str, ms: int | None) -> dict[str, int | str | None]:
    """``{name_ms, name_iso}`` of an instant given in epoch milliseconds (Kling's times)."""
    return {f"{name}_ms": ms, f"{name}_iso": iso_from_ms(ms)}


def stamp(name: str, seconds: float | None) -> dict[str, int | str | None]:
    """``{name_ms, name_iso}`` of an instant given in Unix seconds (klingwatch's own times)."""
    return stamp_ms(name, epoch_ms(seconds))
