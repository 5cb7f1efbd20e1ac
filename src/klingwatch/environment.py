"""The environment variables the library layers read by themselves, and their defaults.

A :class:`~klingwatch.kling.client.KlingClient` built without arguments reads the ``KLING_*``
variables (:func:`kling_credentials`, :func:`kling_api_base`); a
:class:`~klingwatch.store.ledger.Ledger` opened without a URL reads ``KLINGWATCH_DB``
(:func:`ledger_url`). Nothing else: no ``.env``, no ``klingwatch.toml``, no other setting, so a
broken ``.env`` in the working directory cannot break a program that only imports the library.
Those files are the command line's, read by :mod:`klingwatch.settings`, which uses the same names
and the same defaults from here.

This module is the bottom layer (like :mod:`klingwatch.clock` and :mod:`klingwatch.errors`):
everything may import it, it imports nothing of klingwatch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "DEFAULT_API_BASE",
    "absolute_db_url",
    "default_db_url",
    "kling_api_base",
    "kling_credentials",
    "ledger_url",
]

#: Kling's API when ``KLING_API_BASE`` is not set.
DEFAULT_API_BASE = "https://api-singapore.klingai.com"
#: Credential fields of :class:`~klingwatch.kling.auth.Credentials` and their variables.
_CREDENTIAL_VARIABLES = {
    "access_key": "KLING_ACCESS_KEY",
    "secret_key": "KLING_SECRET_KEY",
    "api_key": "KLING_API_KEY",
}


def kling_credentials(environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """``access_key``, ``secret_key`` and ``api_key`` from ``KLING_ACCESS_KEY``,
    ``KLING_SECRET_KEY`` and ``KLING_API_KEY`` (``None`` where unset or blank)."""
    env = os.environ if environ is None else environ
    return {field: _value(env, name) for field, name in _CREDENTIAL_VARIABLES.items()}


def kling_api_base(environ: Mapping[str, str] | None = None) -> str:
    """``KLING_API_BASE``, else :data:`DEFAULT_API_BASE`."""
    return _value(os.environ if environ is None else environ, "KLING_API_BASE") or DEFAULT_API_BASE


def default_db_url() -> str:
    """The default ledger: ``klingwatch.db``, a SQLite file in the working directory."""
    return f"sqlite:///{Path('klingwatch.db').resolve()}"


def absolute_db_url(url: str) -> str:
    """``url`` with a relative SQLite file made absolute (against the working directory).

    Anything else (PostgreSQL, in-memory SQLite, a URL that does not parse) is returned as it
    is: the ledger reports what is wrong with it when it is opened.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return url
    assert database is not None
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    absolute = parsed.set(database=str(Path(database).expanduser().absolute()))
    return absolute.render_as_string(hide_password=False)


def ledger_url(url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The ledger to open: ``url``, else ``KLINGWATCH_DB``, else :func:`default_db_url`; a
    relative SQLite file is made absolute."""
    env = os.environ if environ is None else environ
    return absolute_db_url(url or _value(env, "KLINGWATCH_DB") or default_db_url())


def _value(env: Mapping[str, str], name: str) -> str | None:
    # An empty or blank variable is as good as unset (``KLING_API_KEY=`` in a shell script).
    return (env.get(name) or "").strip() or None
