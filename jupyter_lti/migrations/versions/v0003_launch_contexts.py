"""Add lti_publish_launch_contexts: the latest launch of each (platform, user, resource link).

Revision ID: 0003_launch_contexts
Revises: 0002_drop_oidc_states
Create Date: 2026-12-02

What grade and roster jobs need later, without a browser and without JupyterHub's auth_state. The
table is defined here as it was at this revision (frozen: a later change is a later revision). A
database whose tables were made by ``metadata.create_all`` of this revision's code already has it,
and is only stamped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from jupyter_lti.store import ExactString

revision: str = "0003_launch_contexts"
down_revision: str | Sequence[str] | None = "0002_drop_oidc_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "lti_publish_launch_contexts"

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
        sa.Column("platform", ExactString(255), nullable=False),
        sa.Column("platform_user_id", ExactString(255), nullable=False),
        sa.Column("resource_link_id", ExactString(255), nullable=False),
        sa.Column("local_user_id", ExactString(255), nullable=False),
        sa.Column("context_id", ExactString(255), nullable=False),
        sa.Column("deployment_id", ExactString(255), nullable=False),
        sa.Column("client_id", ExactString(255), nullable=False),
        sa.Column("lti_version", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("message_type", sa.String(255), nullable=False),
        sa.Column("services", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"{TABLE}_pkey"),
        # Three 255-character utf8mb4 columns: 3060 bytes, within MySQL's 3072 of a DYNAMIC row.
        sa.UniqueConstraint("platform", "platform_user_id", "resource_link_id", name=f"{TABLE}_launch_key"),
        **_MYSQL_TABLE_OPTIONS,
    )
    op.create_index(f"{TABLE}_local_user_id_idx", TABLE, ["local_user_id"])


def downgrade() -> None:
    op.drop_table(TABLE)  # its index goes with it
