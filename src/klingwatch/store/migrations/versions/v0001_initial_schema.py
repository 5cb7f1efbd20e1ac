"""The initial ledger schema: batches, tasks, events, downloads, meta, alerts.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 12:49:16.405955
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("cleared_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_kind_active"), "alerts", ["kind", "active"])

    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("download_dir", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("name", name=op.f("uq_batches_name")),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("external_task_id", sa.String(length=200), nullable=False),
        sa.Column("task_id", sa.String(length=100), nullable=True),
        sa.Column("product", sa.String(length=100), nullable=False),
        sa.Column("family", sa.String(length=50), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("mode", sa.String(length=50), nullable=True),
        sa.Column("duration", sa.String(length=20), nullable=True),
        sa.Column("slot_cost", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_msg", sa.Text(), nullable=True),
        sa.Column("kling_created_ms", sa.BigInteger(), nullable=True),
        sa.Column("kling_updated_ms", sa.BigInteger(), nullable=True),
        sa.Column("kling_processing_ms", sa.BigInteger(), nullable=True),
        sa.Column("queued_at", sa.Double(), nullable=False),
        sa.Column("sent_at", sa.Double(), nullable=True),
        sa.Column("submitted_at", sa.Double(), nullable=True),
        sa.Column("processing_at", sa.Double(), nullable=True),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.Column("detected_at", sa.Double(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("units", sa.String(length=50), nullable=True),
        sa.Column("polls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_polled_at", sa.Double(), nullable=True),
        sa.Column("next_look_at", sa.Double(), nullable=True),
        sa.Column("stuck", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("stuck_reason", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("retry_of", sa.Integer(), nullable=True),
        sa.Column("source_line", sa.Text(), nullable=True),
        sa.Column("send_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_tasks_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("external_task_id", name=op.f("uq_tasks_external_task_id")),
    )
    op.create_index(op.f("ix_tasks_batch_id_status"), "tasks", ["batch_id", "status"])
    op.create_index(
        op.f("ix_tasks_product_status_finished_at"), "tasks", ["product", "status", "finished_at"]
    )
    op.create_index(op.f("ix_tasks_status_next_look_at"), "tasks", ["status", "next_look_at"])
    op.create_index(op.f("ix_tasks_task_id"), "tasks", ["task_id"])

    op.create_table(
        "downloads",
        sa.Column("local_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["local_id"], ["tasks.id"], name=op.f("fk_downloads_local_id_tasks")
        ),
        sa.PrimaryKeyConstraint("local_id", "idx", name=op.f("pk_downloads")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("local_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["local_id"], ["tasks.id"], name=op.f("fk_events_local_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_local_id_id"), "events", ["local_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_events_local_id_id"), table_name="events")

    op.drop_table("events")
    op.drop_table("downloads")
    op.drop_index(op.f("ix_tasks_task_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_status_next_look_at"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_product_status_finished_at"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_batch_id_status"), table_name="tasks")

    op.drop_table("tasks")
    op.drop_table("meta")
    op.drop_table("batches")
    op.drop_index(op.f("ix_alerts_kind_active"), table_name="alerts")

    op.drop_table("alerts")
