"""Team mode: one shared rate budget row per connection window

Every worker process that calls a connection's CRM draws on the same rows
(``connector.team.budget``): one theoretical-arrival time per window of the
vendor's pacer, moved under a row lock. The job queue itself is
procrastinate's own schema, applied by ``crmsync worker``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_budgets",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("tat", sa.Float(precision=53), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_budgets")
