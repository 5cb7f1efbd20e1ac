"""Everything that can go wrong with the ledger: :class:`LedgerError` and its branch.

The branch is drawn, with the rest of the tree, in :mod:`klingwatch.errors`: ``LedgerConfigError``
(the ledger cannot even be tried: ``BadLedgerURL``, ``MissingFolder``, ``MissingDriver``),
``LedgerUnavailable``, ``SchemaMismatch`` and ``UnknownTask``.

klingwatch.store never imports klingwatch.kling; both branches hang off the bottom layer's
:class:`~klingwatch.errors.KlingwatchError`, which the command line catches. Errors from
SQLAlchemy and the drivers are translated at one boundary (the ledger's transaction helper) and
chained (``raise ... from exc``). Every message says what to do.
"""

from __future__ import annotations

from klingwatch.errors import KlingwatchError

__all__ = [
    "BadLedgerURL",
    "LedgerConfigError",
    "LedgerError",
    "LedgerUnavailable",
    "MissingDriver",
    "MissingFolder",
    "SchemaMismatch",
    "UnknownTask",
    "redact",
]


class LedgerError(KlingwatchError):
    """Root of every error klingwatch.store raises."""


class LedgerConfigError(LedgerError):
    """The ledger's configuration is wrong; nothing was tried against a database."""


class BadLedgerURL(LedgerConfigError):
    """The database URL cannot be used."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(
            f"bad ledger URL {redact(url)!r}: {why}; set KLINGWATCH_DB (or --db) to a SQLAlchemy "
            "URL such as sqlite:///klingwatch.db or postgresql+psycopg://user@host/dbname"
        )
        self.url = redact(url)


class MissingFolder(LedgerConfigError):
    """A SQLite ledger file whose folder does not exist (klingwatch creates files, not folders:
    a folder that is not there is more often a typo than a wish)."""

    def __init__(self, url: str, folder: str) -> None:
        super().__init__(
            f"the folder {folder} of the ledger {redact(url)} does not exist; create it, or set "
            "KLINGWATCH_DB (or --db) to a file in a folder that does"
        )
        self.url = redact(url)
        self.folder = folder


class MissingDriver(LedgerConfigError):
    """A PostgreSQL URL was given but psycopg is not installed."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"the ledger URL {redact(url)!r} needs psycopg: pip install 'klingwatch[postgres]'"
        )
        self.url = redact(url)


class LedgerUnavailable(LedgerError):
    """The database did not answer: unreachable server, refused login, unopenable file, or a
    lock held too long by another process."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(
            f"cannot use the ledger at {redact(url)}: {why} "
            "(check that the database is running and KLINGWATCH_DB / --db points at it)"
        )
        self.url = redact(url)


class SchemaMismatch(LedgerError):
    """The database's schema is not one this klingwatch can migrate to its own."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"the ledger at {redact(url)} cannot be used: {why}")
        self.url = redact(url)


class UnknownTask(LedgerError):
    """An operation named a task (by local id) that is not in the ledger."""

    def __init__(self, ref: int | str) -> None:
        super().__init__(f"no task {ref!r} in the ledger (see `klingwatch tasks`)")
        self.ref = ref


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _password = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"
