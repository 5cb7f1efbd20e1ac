"""Spend and budget caps: a unit estimate and the cash charged per task, a cap per batch, and
the reason a queued task is held.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02 16:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("max_units", sa.String(length=50), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("units_estimated", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("cash_amount", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("cash_currency", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("hold_reason")
        batch.drop_column("cash_currency")
        batch.drop_column("cash_amount")
        batch.drop_column("units_estimated")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("max_units")
