"""The linking prompt and LTI 1.1 -> 1.3 migration: lti_publish_pending_launches, and
lti_publish_consumers.migrated_to.

Revision ID: 0009_linking_prompt
Revises: 0008_launch_context_content
Create Date: 2026-12-02

The table is defined here as it was at this revision (frozen: a later change is a later revision).
A database made by ``metadata.create_all`` of this revision's code already has both, and is only
stamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from jupyter_lti.store import ExactString, JsonText

revision: str = "0009_linking_prompt"
down_revision: str | Sequence[str] | None = "0008_launch_context_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "lti_publish_pending_launches"
CONSUMERS = "lti_publish_consumers"
_MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in {"engine": "InnoDB", "charset": "utf8mb4", "row_format": "DYNAMIC"}.items()
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "migrated_to" not in {column["name"] for column in inspector.get_columns(CONSUMERS)}:
        with op.batch_alter_table(CONSUMERS) as batch:
            batch.add_column(sa.Column("migrated_to", sa.String(255), nullable=False, server_default=""))
    if PENDING in inspector.get_table_names():
        return
    op.create_table(
        PENDING,
        sa.Column("pending_id", ExactString(64), nullable=False),
        sa.Column("launch", JsonText, nullable=False),
        sa.Column("content_id", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("may_create", sa.Boolean, nullable=False),
        sa.Column("binding", ExactString(64), nullable=False),
        sa.Column("handover", ExactString(64), nullable=False),
        sa.Column("form_token_digest", ExactString(64), nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("account", ExactString(255), nullable=False),
        sa.Column("suggested_username", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("pending_id", name=f"{PENDING}_pkey"),
        **_MYSQL_TABLE_OPTIONS,
    )
    op.create_index(f"{PENDING}_expires_at_idx", PENDING, ["expires_at"])


def downgrade() -> None:
    op.drop_table(PENDING)
    with op.batch_alter_table(CONSUMERS) as batch:
        batch.drop_column("migrated_to")
