"""Links by Wix account: a write to Wix marks the other spokes' links of that account dirty.

Without this index each such write scanned every link (the unique keys lead with the
connector), which made a backfill's writes cost O(links) each.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_links_wix_account_id", "links", ["wix_account_id"])


def downgrade() -> None:
    op.drop_index("ix_links_wix_account_id", table_name="links")
