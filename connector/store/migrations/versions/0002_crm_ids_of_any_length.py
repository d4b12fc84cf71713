"""CRM ids of any length

HubSpot form-submission ids (form GUID + submission id) are 69-90
characters; the 64-character columns of 0001 refused them on PostgreSQL.
Every CRM id column becomes TEXT. SQLite does not enforce VARCHAR lengths,
so its columns already take any length and are left as they are (no table
rebuild on upgrade).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CRM_ID_COLUMNS = [
    ("contacts", "crm_id"),
    ("activities", "contact_crm_id"),
    ("activities", "crm_id"),
    ("job_contacts", "crm_id"),
    ("pending_writes", "crm_id"),
    ("stage_changes", "crm_id"),
    ("dead_letters", "crm_id"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in CRM_ID_COLUMNS:
        op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length=64), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in CRM_ID_COLUMNS:
        op.alter_column(table, column, type_=sa.String(length=64), existing_type=sa.Text(), existing_nullable=False)
