"""Add lti_publish_consumers.enabled and lti_publish_tool_keys.created_at / retires_at.

Revision ID: 0005_consumer_enabled_key_times
Revises: 0004_registration_status
Create Date: 2026-12-02

A consumer an admin disables keeps its row (and its users' links); existing ones are enabled. A tool
key's times drive rotation with an overlap; existing keys get 0 (made before times were kept, no
retirement planned).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_consumer_enabled_key_times"
down_revision: str | Sequence[str] | None = "0004_registration_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSUMERS = "lti_publish_consumers"
TOOL_KEYS = "lti_publish_tool_keys"
NEW_COLUMNS = {
    CONSUMERS: [sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true())],
    TOOL_KEYS: [
        sa.Column("created_at", sa.Double, nullable=False, server_default="0"),
        sa.Column("retires_at", sa.Double, nullable=False, server_default="0"),
    ],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in NEW_COLUMNS.items():
        present = {column["name"] for column in inspector.get_columns(table)}
        missing = [column for column in columns if column.name not in present]
        if not missing:  # made by create_all of this revision's code: only stamped
            continue
        with op.batch_alter_table(table) as batch:
            for column in missing:
                batch.add_column(column)


def downgrade() -> None:
    for table, columns in NEW_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column.name)
