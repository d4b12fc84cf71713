"""Alert cool-down state

One row per alert key (job, trigger, target): when it was last sent and how
many were held back since, so an alert repeats at most once per cool-down
even across processes (``crmsync run`` from cron, several schedulers).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_sends",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alert_sends")),
    )


def downgrade() -> None:
    op.drop_table("alert_sends")
