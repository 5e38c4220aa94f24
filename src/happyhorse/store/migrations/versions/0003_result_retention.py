"""result retention: when a task's video was deleted

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import happyhorse.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(
            sa.Column("result_deleted_at", happyhorse.store.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index("ix_tasks_completed_at", "tasks", ["completed_at"])


def downgrade() -> None:
    op.drop_index("ix_tasks_completed_at", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("result_deleted_at")
