"""Drop lti_publish_oidc_states, which lti_publish_login_states replaced.

Revision ID: 0002_drop_oidc_states
Revises: 0001_baseline
Create Date: 2026-12-02

Only databases made before login_states existed have the table: create_all left it in place beside
its successor, and nothing has read it since. It held login states, which live ten minutes, so
nothing is lost. The downgrade does not bring it back: no code of any revision reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import inspect

revision: str = "0002_drop_oidc_states"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OBSOLETE = "lti_publish_oidc_states"


def upgrade() -> None:
    if OBSOLETE in inspect(op.get_bind()).get_table_names():
        op.drop_table(OBSOLETE)  # its index goes with it


def downgrade() -> None:
    pass
