"""Everything klingwatch raises on purpose, as one tree with one root.

::

    KlingwatchError                 root: catch this to catch everything klingwatch raises
    ├── ConfigurationError          local setup is wrong (a setting, a file, an argument)
    │   ├── MissingCredentials      no KLING_ACCESS_KEY/KLING_SECRET_KEY and no KLING_API_KEY
    │   ├── UnknownProduct          a product name or API path not in the registry (a KeyError too)
    │   ├── TemplateError           a download template that cannot name every file
    │   ├── PortUnavailable         the port to listen on is taken or not allowed
    │   └── SpendRequestError       a spend report or budget cap asked of what is not there
    ├── RequestValidationError      a create request Kling would refuse, caught before sending
    ├── IntakeError                 a batch file that cannot be queued (every FILE:LINE: problem)
    ├── RetryRefused                a retry that must not happen; nothing was queued
    ├── FileBusy                    another process is downloading this file right now
    ├── FetchError                  a result file could not be fetched
    │   ├── ExpiredURL              403/404/410: Kling deleted the result (kept 30 days)
    │   ├── NotMedia                the URL answered HTML, or bytes that are not the media expected
    │   ├── TransferFailed          retries exhausted, or an answer that makes no sense
    │   └── StorageError            disk full / folder unwritable: every download must stop
    ├── KlingError                  what Kling or the network did
    │   ├── TasksStyleRefused       the server refuses the 2026 /tasks style to these credentials
    │   ├── WebhookVerificationError a callback whose signature or timestamp does not check out
    │   ├── BadCallback             a callback body that is not a Kling task in any known form
    │   ├── WaitTimeout             wait() passed its deadline; carries the last task seen
    │   ├── TransportError          no usable answer: the request may or may not have arrived
    │   │   ├── KlingConnectionError refused, reset, dropped mid-answer
    │   │   └── KlingTimeout        no answer in time
    │   ├── BadResponse             an answer that is not Kling's envelope (HTML, truncated JSON)
    │   │   └── UnknownTaskStatus   a task status this version does not know (payload attached)
    │   └── APIError                Kling answered with an error envelope
    │       ├── AuthenticationError 401 · 1000-1004
    │       │   └── TokenExpired    401 · 1003, 1004 (the client re-signs and retries once)
    │       ├── AccountError        429 · 1100, 1101, 1304 (account abnormal, arrears, IP whitelist)
    │       │   └── InsufficientBalance 429 · 1102 (resource pack exhausted or expired)
    │       ├── PermissionDenied    403 · 1103
    │       ├── InvalidRequest      400 · 1200, 1201
    │       │   └── TaskNotFound    a lookup answered 400 · 1201 "Task not found" or 404 · 1203
    │       ├── NotFound            404 · 1202, 1203 (invalid method / resource not found)
    │       ├── ContentPolicyError  400 · 1300, 1301
    │       ├── RateLimited         429 · 1302
    │       ├── ConcurrencyLimited  429 · 1303 (the task was *not* created)
    │       └── ServerError         500/503/504 · 5000-5002
    │           └── ServiceUnavailable 503 · 5001 (maintenance)
    └── LedgerError                 what the ledger's database did, or its setup
        ├── LedgerConfigError       the ledger cannot even be tried: fix the setup
        │   ├── BadLedgerURL        KLINGWATCH_DB / --db is not a usable SQLAlchemy URL
        │   ├── MissingFolder       a SQLite ledger file in a folder that does not exist
        │   └── MissingDriver       a postgresql URL without psycopg installed
        ├── LedgerUnavailable       the database did not answer (unreachable, locked, unopenable)
        ├── SchemaMismatch          the database was migrated by a newer klingwatch (or is not ours)
        └── UnknownTask             an operation named a task the ledger does not hold

Where each branch lives: :mod:`klingwatch.kling.errors` (``KlingError`` and the errors of the
Kling layer's own checks: ``MissingCredentials``, ``UnknownProduct``,
``RequestValidationError``), :mod:`klingwatch.store.errors` (``LedgerError``), and the module
that raises each local error (``TemplateError`` in :mod:`klingwatch.monitor.layout`,
``IntakeError`` in :mod:`klingwatch.monitor.intake`, ``FetchError`` and its children in
:mod:`klingwatch.monitor.fetch`, ``FileBusy`` in :mod:`klingwatch.monitor.locks`,
``RetryRefused`` in :mod:`klingwatch.monitor.retries`, ``PortUnavailable`` in
:mod:`klingwatch.cli.listen`, ``SpendRequestError`` in :mod:`klingwatch.operations.spend`).

The branches say who is at fault. ``KlingError`` is only what Kling or the network did (and
carries ``retryable``, ``may_exist``, ``status_code``, ``code``, ``request_id``); a missing
credential, a bad setting or a request refused by klingwatch's own validation is not something
Kling said, so those hang off the root. ``ConfigurationError`` lives here, at the bottom, because
every layer raises it (settings, the Kling client, the ledger's callers, the CLI) and none may
import another layer for it. The command line turns any ``KlingwatchError`` into one ``error:``
line; a library user catches ``KlingwatchError`` (exported as ``klingwatch.KlingwatchError``).
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "KlingwatchError"]


class KlingwatchError(Exception):
    """Root of every error klingwatch raises; the message is one line that says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(KlingwatchError):
    """Local setup is wrong (a setting, a file, an argument); nothing was sent."""
