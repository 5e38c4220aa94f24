"""uploads: who uploaded each input image and how large it is (the per-account upload quota)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from happyhorse.store.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("account_id", sa.String(length=40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_uploads_account_id", "uploads", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_uploads_account_id", table_name="uploads")
    op.drop_table("uploads")
