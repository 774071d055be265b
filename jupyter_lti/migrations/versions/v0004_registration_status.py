"""Add lti_publish_registrations.status: "active", "pending" (dynamic registration) or "disabled".

Revision ID: 0004_registration_status
Revises: 0003_launch_contexts
Create Date: 2026-12-02

Existing registrations are active (the server default fills them in).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_registration_status"
down_revision: str | Sequence[str] | None = "0003_launch_contexts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "lti_publish_registrations"


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(TABLE)}
    if "status" in columns:  # made by create_all of this revision's code: only stamped
        return
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("status")
