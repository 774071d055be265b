"""Add lti_publish_grade_outbox: the durable grade outbox (lti_core.outbox).

Revision ID: 0007_grade_outbox
Revises: 0006_consumer_secret_text
Create Date: 2026-12-02

One row per (platform, platform user, target), keyed by sha256 of the three (``key_digest``): a
target has no length limit and would pass MySQL's index limit. The table is defined here as it was
at this revision (frozen: a later change is a later revision). A database whose tables were made by
``metadata.create_all`` of this revision's code already has it, and is only stamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from jupyter_lti.store import ExactString

revision: str = "0007_grade_outbox"
down_revision: str | Sequence[str] | None = "0006_consumer_secret_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "lti_publish_grade_outbox"

_MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in {"engine": "InnoDB", "charset": "utf8mb4", "row_format": "DYNAMIC"}.items()
}


def upgrade() -> None:
    if TABLE in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_digest", ExactString(64), nullable=False),
        sa.Column("platform", ExactString(255), nullable=False),
        sa.Column("platform_user_id", ExactString(255), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score_given", sa.Double, nullable=True),
        sa.Column("score_maximum", sa.Double, nullable=True),
        sa.Column("activity_progress", sa.String(32), nullable=False),
        sa.Column("grading_progress", sa.String(32), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("score_timestamp", sa.Double, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Column("last_status", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("claimed_by", sa.String(255), nullable=False),
        sa.Column("claim_expires_at", sa.Double, nullable=False),
        sa.Column("delivered_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"{TABLE}_pkey"),
        sa.UniqueConstraint("key_digest", name=f"{TABLE}_key_digest_key"),
        **_MYSQL_TABLE_OPTIONS,
    )
    op.create_index(f"{TABLE}_state_next_attempt_at_idx", TABLE, ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table(TABLE)  # its index goes with it
