"""The ledger's tables (SQLAlchemy 2 Core), the same on SQLite and PostgreSQL.

The Alembic revisions in ``klingwatch/store/migrations/versions`` build exactly this schema; a
test compares a migrated database against :data:`metadata`, so a change here needs a revision.

Times are Unix seconds as ``DOUBLE``; Kling's own times keep their epoch milliseconds as
``BIGINT`` (``kling_*_ms``). Statuses and sources are stored as their string values.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "alerts",
    "batches",
    "downloads",
    "events",
    "incidents",
    "meta",
    "metadata",
    "outbox",
    "tasks",
]

# Explicit constraint names, so migrations can name what they alter on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("download_dir", Text),
    # The budget cap in units (a decimal string); NULL: no cap. See store/budget.py.
    Column("max_units", String(50)),
    UniqueConstraint("name"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),  # the local id
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("external_task_id", String(200), nullable=False),
    Column("task_id", String(100)),  # Kling's id, known once a create answer or lookup names it
    Column("product", String(100), nullable=False),
    Column("family", String(50), nullable=False),
    Column("request", JSON, nullable=False),
    Column("model", String(100)),
    Column("mode", String(50)),
    Column("duration", String(20)),
    Column("slot_cost", Integer, nullable=False, server_default=text("1")),
    Column("status", String(20), nullable=False),
    Column("status_msg", Text),
    Column("kling_created_ms", BigInteger),
    Column("kling_updated_ms", BigInteger),
    Column("kling_processing_ms", BigInteger),
    Column("queued_at", Double, nullable=False),
    Column("sent_at", Double),
    Column("submitted_at", Double),
    Column("processing_at", Double),
    Column("finished_at", Double),
    Column("detected_at", Double),
    Column("result", JSON(none_as_null=True)),  # SQL NULL, not JSON 'null', when absent
    Column("units", String(50)),
    Column("polls", Integer, nullable=False, server_default=text("0")),
    Column("last_polled_at", Double),
    Column("next_look_at", Double),
    Column("stuck", Boolean, nullable=False, server_default=text("false")),
    Column("stuck_reason", Text),
    Column("callback_url", Text),
    Column("retry_of", Integer),
    Column("source_line", Text),
    Column("send_attempts", Integer, nullable=False, server_default=text("0")),
    Column("lease_owner", String(200)),
    Column("lease_until", Double),
    # Spend: the unit estimate made at queue time, and the cash Kling charged (billing[]).
    Column("units_estimated", String(50)),
    Column("cash_amount", String(50)),
    Column("cash_currency", String(10)),
    # Why a queued task is not being sent (a budget cap); NULL: free to send.
    Column("hold_reason", Text),
    UniqueConstraint("external_task_id"),
    Index(None, "status", "next_look_at"),  # due(), claim_due()
    Index(None, "task_id"),  # observations that name only Kling's id
    Index(None, "batch_id", "status"),  # counts per batch
    Index(None, "product", "status", "finished_at"),  # durations()
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    # NULL only for orphans: reports about a task the ledger does not hold.
    Column("local_id", Integer, ForeignKey("tasks.id")),
    Column("at", Double, nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20), nullable=False),
    Column("source", String(20), nullable=False),
    Column("detail", Text),
    Index(None, "local_id", "id"),
)

downloads = Table(
    "downloads",
    metadata,
    Column("local_id", Integer, ForeignKey("tasks.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("path", Text),
    Column("size", BigInteger),
    Column("sha256", String(64)),
    Column("state", String(20), nullable=False),
    Column("error", Text),
    Column("at", Double, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(100), nullable=False),
    Column("message", Text, nullable=False),
    Column("at", Double, nullable=False),
    Column("last_at", Double, nullable=False),
    Column("count", Integer, nullable=False, server_default=text("1")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("cleared_at", Double),
    Index(None, "kind", "active"),
)

# One row per (rule, subject): an alert condition the notifier told (or owes) people about.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule", String(50), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("opened_at", Double, nullable=False),
    Column("seen_at", Double, nullable=False),
    Column("closed_at", Double),
    # When the last round of messages reached every target (NULL: none yet since it opened).
    Column("notified_at", Double),
    Column("notifications", Integer, nullable=False, server_default=text("0")),
    # Targets a round still owes a message to (a failed delivery, retried on the next round).
    Column("pending_targets", JSON(none_as_null=True)),
    Column("lease_owner", String(200)),
    Column("lease_until", Double),
    UniqueConstraint("rule", "subject"),
)

# Status-change events still to be delivered to KLINGWATCH_EVENTS_URL; a row is deleted once a
# delivery is acknowledged, so the table holds only what is owed.
outbox = Table(
    "outbox",
    metadata,
    Column("event_id", Integer, ForeignKey("events.id"), primary_key=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_at", Double, nullable=False),
    Column("last_error", Text),
    Column("lease_owner", String(200)),
    Column("lease_until", Double),
    Index(None, "next_at"),
)
