"""A connection's first load of activities goes through a staging table

A first load of a million activities inserted each page group into the
``activities`` key and ``crm_id`` index at random places (pages arrive in the
CRM's modification order, not by contact): on SQLite two thirds of the
store's time at 100,000 contacts. The load is now appended to
``activity_staging`` (indexed only by ``(connection, batch)``, which grows at
its end) and moved into ``activities`` in key order, in one statement, when the
pull ends; a pull that stops before that leaves its rows staged, and the next
pull of the connection moves them first.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.store.tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_staging",
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("batch", sa.BigInteger(), nullable=False),
        sa.Column("contact_crm_id", connector.store.tables.SafeText(), nullable=False),
        sa.Column("crm_id", connector.store.tables.SafeText(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", connector.store.tables.UtcDateTime(), nullable=False),
        sa.Column("detail", connector.store.tables.SafeText(), nullable=True),
        sa.Column("content_hash", sa.String(length=40), nullable=False),
        sa.Column("modified_at", connector.store.tables.UtcDateTime(), nullable=True),
    )
    op.create_index("ix_activity_staging_connection_batch", "activity_staging", ["connection", "batch"])


def downgrade() -> None:
    op.drop_index("ix_activity_staging_connection_batch", table_name="activity_staging")
    op.drop_table("activity_staging")
