"""lti_publish_launch_contexts gains content_id and resource_link_title.

Revision ID: 0008_launch_context_content
Revises: 0007_grade_outbox
Create Date: 2026-12-02

``content_id`` is the launch's target (the notebook or assignment it opens), so a score given for it
finds the links it goes to; indexed for that lookup. A database whose tables were made by
``metadata.create_all`` of this revision's code already has the columns, and is only stamped.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jupyter_lti.store import ExactString

revision: str = "0008_launch_context_content"
down_revision: str | Sequence[str] | None = "0007_grade_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "lti_publish_launch_contexts"
INDEX = f"{TABLE}_content_id_idx"


def upgrade() -> None:
    if "content_id" in {column["name"] for column in sa.inspect(op.get_bind()).get_columns(TABLE)}:
        return
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("content_id", ExactString(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("resource_link_title", sa.String(255), nullable=False, server_default=""))
    op.create_index(INDEX, TABLE, ["content_id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("resource_link_title")
        batch.drop_column("content_id")
