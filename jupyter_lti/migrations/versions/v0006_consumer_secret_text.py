"""lti_publish_consumers.secret becomes TEXT: sealed at rest, a secret no longer fits 255 characters.

Revision ID: 0006_consumer_secret_text
Revises: 0005_consumer_enabled_key_times
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_consumer_secret_text"
down_revision: str | Sequence[str] | None = "0005_consumer_enabled_key_times"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "lti_publish_consumers"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("secret", type_=sa.Text, existing_type=sa.String(255), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("secret", type_=sa.String(255), existing_type=sa.Text, existing_nullable=False)
