"""klingwatch.store: the ledger, every task klingwatch knows, durably, behind one door.

SQLAlchemy 2 Core on SQLite (a file, WAL) by default and on PostgreSQL through the same code
(``postgresql+psycopg://...``), chosen by ``KLINGWATCH_DB`` / ``--db``. The schema is migrated by
Alembic revisions shipped in this package, run by :meth:`Ledger.open`. This package knows nothing
of HTTP and never imports :mod:`klingwatch.kling`.

The one door
------------
:meth:`Ledger.apply` / :meth:`Ledger.apply_many` are the only code that writes a task's status.
Every status report (a create answer, a single get, a list page, a callback, a recovery lookup)
becomes an :class:`Observation` passed through it. It is idempotent and monotonic over the ranks
``queued < unknown < submitted < processing < succeed|failed|rejected``::

    from \\ to    queued    unknown  submitted  processing  succeed  failed  rejected
    queued        =         yes      yes        yes         yes      yes     yes
    unknown       RECOVERY  =        yes        yes         yes      yes     yes
    submitted     -         -        =          yes         yes      yes     -
    processing    -         -        -          =           yes      yes     -
    succeed       -         -        -          -           =        -       -
    failed        -         -        -          -           -        =       -
    rejected      -         -        -          -           -        -       =

* ``yes``: accepted; the rank rises (ranks may be skipped). One event (at, from, to, source,
  detail) is written per accepted status change, in the same transaction as the change.
* ``-``: ignored. A late ``processing`` never overwrites ``succeed``; a final status never changes;
  ``rejected`` (Kling refused the create) only comes from ``queued`` or ``unknown``.
* ``RECOVERY``: the one backward move, ``unknown -> queued``, only with :attr:`Source.RECOVERY`
  (the lookup by external_task_id found nothing, so the task may be sent again).
* ``=``: the same status again changes no status and writes no event, but merges facts:
  ``task_id`` and Kling's created time are attached when missing, ``kling_updated_ms`` keeps its
  maximum, and result / charges (units, cash) / status_msg are filled when missing or replaced
  by a strictly newer report.

Hence any reordering or duplication of a task's reports ends in the same state as the ordered
sequence. A report about a task the ledger does not hold returns ``None`` and is kept as an
orphan event (``local_id`` NULL). The rules live, as a pure function, in
:mod:`klingwatch.store.door`.
"""

from klingwatch.store.errors import (
    BadLedgerURL,
    LedgerConfigError,
    LedgerError,
    LedgerUnavailable,
    MissingDriver,
    MissingFolder,
    SchemaMismatch,
    UnknownTask,
)
from klingwatch.store.ledger import Ledger
from klingwatch.store.records import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    AddResult,
    AlertRecord,
    BatchRecord,
    Change,
    DownloadRecord,
    DurationStats,
    EventRecord,
    LocalStatus,
    NewTask,
    Observation,
    Source,
    TaskRecord,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "AddResult",
    "AlertRecord",
    "BadLedgerURL",
    "BatchRecord",
    "Change",
    "DownloadRecord",
    "DurationStats",
    "EventRecord",
    "Ledger",
    "LedgerConfigError",
    "LedgerError",
    "LedgerUnavailable",
    "LocalStatus",
    "MissingDriver",
    "MissingFolder",
    "NewTask",
    "Observation",
    "SchemaMismatch",
    "Source",
    "TaskRecord",
    "UnknownTask",
]
