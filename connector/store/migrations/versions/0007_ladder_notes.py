"""History's "beyond the ladder" entries: why nothing is written, once each time

A contact whose CRM stage is beyond or outside the ladder (a HubSpot
customer, a Salesforce Lead on a closed or custom Status) gets nothing
written. The history says why once, the first time it is found there, not on
every run: one ``ladder_notes`` row, closed (``back_at``) when the contact
comes back inside the ladder, so a later return beyond it is noted again. The
rows are not stage changes: the funnel and the history's change counts never
see them.

Revision ID: 0007
Revises: 0005 (to be relinked to 0006 at merge)
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.store.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ladder_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("crm_id", connector.store.tables.SafeText(), nullable=False),
        sa.Column("email", connector.store.tables.SafeString(length=254), nullable=True),
        sa.Column("reason", connector.store.tables.SafeText(), nullable=False),
        sa.Column("noted_at", connector.store.tables.UtcDateTime(), nullable=False),
        sa.Column("back_at", connector.store.tables.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ladder_notes")),
    )
    op.create_index(op.f("ix_ladder_notes_job_connection_crm_id"), "ladder_notes", ["job", "connection", "crm_id"])
    op.create_index(op.f("ix_ladder_notes_job_noted_at"), "ladder_notes", ["job", "noted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ladder_notes_job_noted_at"), table_name="ladder_notes")
    op.drop_index(op.f("ix_ladder_notes_job_connection_crm_id"), table_name="ladder_notes")
    op.drop_table("ladder_notes")
