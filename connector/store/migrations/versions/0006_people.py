"""People: one person's records across the CRMs of a unifying job

``people`` (one row per person), ``person_links`` (which person each record
is, and how: ``email`` or ``manual``; it survives e-mail changes),
``person_emails`` (each linked record's normalised addresses, for matching),
``person_unlinks`` (records taken out of a person by hand: never put back
there by the matcher) and ``person_conflicts`` (each conflict once, with what
was done). See docs/people.md.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connector.store.tables import SafeJSON, SafeString, SafeText, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", SafeString(254), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "person_links",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("crm_id", SafeText(), primary_key=True),
        sa.Column("person_id", sa.String(36), nullable=False),
        sa.Column("how", sa.String(8), nullable=False),
        sa.Column("linked_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_person_links_person_id", "person_links", ["person_id"])
    op.create_table(
        "person_emails",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("crm_id", SafeText(), primary_key=True),
        sa.Column("email", SafeString(254), primary_key=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_person_emails_email", "person_emails", ["email"])
    op.create_table(
        "person_unlinks",
        sa.Column("connection", sa.String(64), primary_key=True),
        sa.Column("crm_id", SafeText(), primary_key=True),
        sa.Column("person_id", sa.String(36), primary_key=True),
        sa.Column("unlinked_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "person_conflicts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", SafeText(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(36), nullable=True),
        sa.Column("records", SafeJSON(), nullable=False),
        sa.Column("action", SafeText(), nullable=False),
        sa.Column("first_seen", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("key", name="uq_person_conflicts_key"),
    )
    op.create_index("ix_person_conflicts_person_id", "person_conflicts", ["person_id"])


def downgrade() -> None:
    op.drop_table("person_conflicts")
    op.drop_table("person_unlinks")
    op.drop_table("person_emails")
    op.drop_table("person_links")
    op.drop_table("people")
