"""A moment to decide a contact again

A decision that depends on time (an activity dated in the future, such as a
meeting booked for next week that a held-meeting rule waits for; with
regression on, a window that closes) records when it may change:
``job_contacts.decide_again_at``. A run queues the contacts whose moment has
come before it decides, without re-pulling anything.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connector.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "ix_job_contacts_job_connection_decide_again_at"


def upgrade() -> None:
    # a nullable column without a default: SQLite adds it in place, no table rebuild
    op.add_column("job_contacts", sa.Column("decide_again_at", connector.store.tables.UtcDateTime(), nullable=True))
    op.create_index(INDEX, "job_contacts", ["job", "connection", "decide_again_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="job_contacts")
    with op.batch_alter_table("job_contacts") as batch:
        batch.drop_column("decide_again_at")
