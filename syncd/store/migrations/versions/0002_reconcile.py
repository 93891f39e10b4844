"""Reconcile staging tables; operations.carried; conflicts.side.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the staging tables a reconcile run pages accounts into, and two columns."""
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("carried", sa.Integer(), nullable=True))
    with op.batch_alter_table("conflicts") as batch:
        batch.add_column(sa.Column("side", sa.String(), nullable=True))
    op.create_table(
        "reconcile_accounts",
        sa.Column("side", sa.String(), nullable=False),
        sa.Column("connector", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("contact_id", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("revision", sa.String(), nullable=True),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("side", "connector", "account_id", name="pk_reconcile_accounts"),
    )
    op.create_index(
        "ix_reconcile_accounts_email", "reconcile_accounts", ["side", "connector", "email"]
    )
    op.create_index(
        "ix_reconcile_accounts_phone", "reconcile_accounts", ["side", "connector", "phone"]
    )
    op.create_table(
        "reconcile_contacts",
        sa.Column("contact_id", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("contact_id", name="pk_reconcile_contacts"),
    )
    op.create_index("ix_reconcile_contacts_phone", "reconcile_contacts", ["phone"])
    op.create_table(
        "reconcile_pairs",
        sa.Column("connector", sa.String(), nullable=False),
        sa.Column("wix_account_id", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("matched_by", sa.String(), nullable=False),
        sa.Column("started", sa.Boolean(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("connector", "wix_account_id", name="pk_reconcile_pairs"),
        sa.UniqueConstraint(
            "connector", "external_id", name="uq_reconcile_pairs_connector_external_id"
        ),
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("reconcile_pairs")
    op.drop_index("ix_reconcile_contacts_phone", table_name="reconcile_contacts")
    op.drop_table("reconcile_contacts")
    op.drop_index("ix_reconcile_accounts_phone", table_name="reconcile_accounts")
    op.drop_index("ix_reconcile_accounts_email", table_name="reconcile_accounts")
    op.drop_table("reconcile_accounts")
    with op.batch_alter_table("conflicts") as batch:
        batch.drop_column("side")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("carried")
