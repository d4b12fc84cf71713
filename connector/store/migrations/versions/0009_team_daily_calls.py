"""Team mode: each connection's API calls per hour, shared by all workers (the daily budget)

Every worker process that calls a connection's CRM counts its calls in the
connection's row of the current hour (``connector.team.budget``); the calls of
the last 24 hours together stay under the connection's
``daily_call_budget``. Rows older than a day are deleted as the hours pass.

Revision ID: 0009
Revises: 0005 (relinked to the newest revision when the branches merge)
Create Date: 2026-12-02 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_calls",
        sa.Column("connection", sa.Text(), primary_key=True),
        sa.Column("hour", sa.BigInteger(), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("daily_calls")
