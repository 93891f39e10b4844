"""The first schema: links, operations, cursors, inbox events, conflicts.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _utc(name: str, *, nullable: bool) -> sa.Column[object]:
    """A UTC timestamp column (timestamptz on PostgreSQL, naive UTC text on SQLite)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the five store tables with their keys and indexes."""
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connector", sa.String(), nullable=False),
        sa.Column("wix_account_id", sa.String(), nullable=False),
        sa.Column("wix_contact_id", sa.String(), nullable=True),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("wix_base", sa.Integer(), nullable=True),
        sa.Column("ext_base", sa.Integer(), nullable=True),
        sa.Column("wix_revision", sa.String(), nullable=True),
        sa.Column("ext_version", sa.String(), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        _utc("dirty_since", nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        _utc("lease_until", nullable=True),
        _utc("created_at", nullable=False),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_links"),
        sa.UniqueConstraint(
            "connector", "wix_account_id", name="uq_links_connector_wix_account_id"
        ),
        sa.UniqueConstraint("connector", "external_id", name="uq_links_connector_external_id"),
    )
    op.create_index("ix_links_dirty", "links", ["dirty"])

    op.create_table(
        "operations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("planned_wix", sa.Integer(), nullable=True),
        sa.Column("planned_ext", sa.Integer(), nullable=True),
        sa.Column("planned_wix_base", sa.Integer(), nullable=True),
        sa.Column("planned_ext_base", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("remote_tx_id", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        _utc("created_at", nullable=False),
        _utc("updated_at", nullable=False),
        _utc("sent_at", nullable=True),
        _utc("applied_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operations"),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], name="fk_operations_link_id_links"),
    )
    op.create_index("ix_operations_link_id", "operations", ["link_id"])
    op.create_index("ix_operations_status", "operations", ["status"])

    op.create_table(
        "cursors",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_cursors"),
    )

    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("entity_id", sa.String(), nullable=True),
        _utc("received_at", nullable=False),
        _utc("processed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_events"),
        sa.UniqueConstraint("source", "event_id", name="uq_inbox_events_source_event_id"),
    )

    op.create_table(
        "conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("wix_balance", sa.Integer(), nullable=True),
        sa.Column("ext_balance", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(), nullable=True),
        _utc("created_at", nullable=False),
        _utc("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_conflicts"),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], name="fk_conflicts_link_id_links"),
    )
    op.create_index("ix_conflicts_status", "conflicts", ["status"])


def downgrade() -> None:
    """Drop the five store tables (and every row in them)."""
    op.drop_table("conflicts")
    op.drop_table("inbox_events")
    op.drop_table("cursors")
    op.drop_table("operations")
    op.drop_table("links")
